import { COMMON_LUA } from './common.lua.js';

/**
 * tryAcquire: take the lock if it is free and nobody live is queued; never queue, never wait.
 * A free lock with live waiters is handed to the longest waiter instead (no queue jumping).
 *
 * KEYS: 1 lock, 2 fence, 3 queue, 4 waiters (see `common.lua.ts`).
 * ARGV: 1 token, 2 ttlMs.
 * Returns `{1, fence}` when acquired, `{0, pttlMs}` when held (pttl of the current holding).
 */
export const TRY_ACQUIRE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('INCR', KEYS[2])}
end
${COMMON_LUA}
if promote(now_ms()) then
  return {0, redis.call('PTTL', KEYS[1])}
end
return {1, grant(ARGV[1], ARGV[2])}
`;
