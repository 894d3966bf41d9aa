import { COMMON_LUA, PRELUDE_LUA } from './common.lua.js';

/**
 * A queued waiter's heartbeat and polling fallback, in one step: keeps its queue entry alive,
 * serves the queue if holders expired, and tells the waiter whether it holds the lock. A grant
 * whose notification was missed is re-validated here (the TTL restarts now), so the waiter can
 * date its lease from this request. Any grant wakes the waiter's `BLPOP`.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters (the notify list is derived from the id).
 * ARGV: 1 token, 2 ttlMs, 3 waiter id, 4 queue entry TTL ms, 5 (unused here), 6 the limit of a
 * shared waiter (absent for an exclusive one).
 * Returns `{1, fence, serverNowMs}` when this waiter holds the lock, `{0, waitHintMs,
 * serverNowMs}` while it waits, `{-1, 0, serverNowMs}` when its entry is gone (it heartbeated
 * too late): the caller must enqueue again.
 */
export const POLL_LUA = `${PRELUDE_LUA}${COMMON_LUA}
local limit = ARGV[6] and tonumber(ARGV[6])
local now = now_ms()
if redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then
  enqueue(ARGV[3], ARGV[1], ARGV[2], limit, tonumber(ARGV[4]), now, false)
  local _, mine = promote(now, ARGV[3])
  if mine then
    return {1, mine, now}
  end
  return {0, wait_hint(now, limit), now}
end
local holder = redis.call('GET', KEYS[1])
if holder and held_by(holder, ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  notify(ARGV[3], 'w', tonumber(ARGV[4]))
  local _, fence = holder_of(holder)
  return {1, fence, now}
end
if holder and string.byte(holder, 1) == 255 then
  local expires_at = redis.call('ZSCORE', SHARED, ARGV[1])
  if expires_at and tonumber(expires_at) > now then
    redis.call('ZADD', SHARED, now + ARGV[2], ARGV[1])
    keep_shared(limit, now, ARGV[2])
    notify(ARGV[3], 'w', tonumber(ARGV[4]))
    return {1, redis.call('HGET', FENCES_OF, ARGV[1]), now}
  end
end
return {-1, 0, now}
`;
