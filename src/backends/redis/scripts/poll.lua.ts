import { COMMON_LUA } from './common.lua.js';

/**
 * A queued waiter's heartbeat and polling fallback, in one step: keeps its queue entry alive,
 * serves the queue if the lock's holder expired, and tells the waiter whether it holds the lock.
 * A grant whose notification was missed is re-validated here (the TTL restarts now), so the
 * waiter can date its lease from this request. Any grant wakes the waiter's `BLPOP`.
 *
 * KEYS: 1 lock, 2 fence, 3 queue, 4 waiters (the waiter's notify list is derived from its id).
 * ARGV: 1 token, 2 ttlMs, 3 waiter id, 4 queue entry TTL ms.
 * Returns `{1, fence, serverNowMs}` when this waiter holds the lock, `{0, pttlMs, serverNowMs}`
 * while it waits, `{-1, 0, serverNowMs}` when its entry is gone (it heartbeated too late): the
 * caller must enqueue again.
 */
export const POLL_LUA = `${COMMON_LUA}
local now = now_ms()
if redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then
  enqueue(ARGV[3], ARGV[1], ARGV[2], tonumber(ARGV[4]), now, false)
  local id, fence = promote_if_free()
  if id == ARGV[3] then
    return {1, fence, now}
  end
  return {0, redis.call('PTTL', KEYS[1]), now}
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  notify(ARGV[3], 'w', tonumber(ARGV[4]))
  return {1, redis.call('GET', KEYS[2]), now}
end
return {-1, 0, now}
`;
