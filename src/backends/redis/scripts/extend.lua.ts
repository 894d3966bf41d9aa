import { GENERAL_LUA, PRELUDE_LUA, SHARED_LUA } from './common.lua.js';

/**
 * extend: restart the holding's TTL, only if the token still holds the lock (exclusively, or as
 * a shared holder). A lock found free with live waiters is served to them.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters.
 * ARGV: 1 token, 2 ttlMs.
 * Returns 1 extended, 0 expired (nobody holds it), -1 not-owner (others hold it).
 */
export const EXTEND_LUA = `${PRELUDE_LUA}
local holder = redis.call('GET', KEYS[1])
if holder and held_by(holder, ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
${SHARED_LUA}
-- A shared holder renews (every third of its TTL): without the general helpers.
if holder and string.byte(holder, 1) == 255 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local expires_at = redis.call('ZSCORE', SHARED, ARGV[1])
  if expires_at and tonumber(expires_at) > now then
    redis.call('ZADD', SHARED, now + ARGV[2], ARGV[1])
    expire_with_longest()
    return 1
  end
end
${GENERAL_LUA}
local now = now_ms()
if holder and string.byte(holder, 1) == 255 then
  if sweep(now) > 0 then return -1 end
elseif holder then
  return -1
end
promote(now)
return 0
`;
