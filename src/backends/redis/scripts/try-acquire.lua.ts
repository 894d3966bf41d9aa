import { COMMON_LUA, PRELUDE_LUA } from './common.lua.js';

/**
 * tryAcquire, exclusive (a mutex, a writer): take the lock if nobody holds it (in either mode)
 * and nobody live is queued; never queue, never wait. A free lock with live waiters is served to
 * them instead (no queue jumping).
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters (see `common.lua.ts`).
 * ARGV: 1 token, 2 ttlMs.
 * Returns `{1, fence}` when acquired, `{0, pttlMs}` when held (pttl of the current holding).
 */
export const TRY_ACQUIRE_LUA = `${PRELUDE_LUA}
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  local fence = next_fence()
  redis.call('SET', KEYS[1], ARGV[1] .. SEP .. fence, 'PX', ARGV[2])
  return {1, fence}
end
${COMMON_LUA}
promote(now_ms())
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
return {1, grant(ARGV[1], ARGV[2])}
`;
