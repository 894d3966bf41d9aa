import { COMMON_LUA } from './common.lua.js';

/**
 * release: delete the lock only if the token holds it, and hand it straight to the longest live
 * waiter (who then needs no further round trip: its `BLPOP` returns the grant).
 *
 * KEYS: 1 lock, 2 fence, 3 queue, 4 waiters.
 * ARGV: 1 token.
 * Returns 2 released and handed to a waiter, 1 released, 0 expired (nobody held it), -1 not-owner (another token holds it).
 */
export const RELEASE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then
  if holder then return -1 end
  -- Nobody held it (it expired). Serve the queue if it has waiters: the rare path, so only here
  -- are the shared helpers defined (defining them costs every call that reaches them).
  if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
  ${COMMON_LUA}
  promote_if_free()
  return 0
end
local id = redis.call('LPOP', KEYS[3])
if not id then
  redis.call('DEL', KEYS[1])
  return 1
end
-- Hand the lock to the longest live waiter. The hot path of a contended lock, so written out
-- in as few calls as possible: the lock is overwritten rather than deleted first, and entries of
-- dead waiters (heartbeat expired) are dropped on the way.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
repeat
  local entry = redis.call('HGET', KEYS[4], id)
  if entry then
    redis.call('HDEL', KEYS[4], id)
    local expires_at, ttl, token = string.match(entry, '^(%d+)|(%d+)|(.*)$')
    if tonumber(expires_at) > now then
      redis.call('SET', KEYS[1], token, 'PX', ttl)
      local fence = redis.call('INCR', KEYS[2])
      local list = KEYS[1] .. ':n:' .. id
      redis.call('RPUSH', list, 'g|' .. fence .. '|' .. now)
      redis.call('PEXPIRE', list, tonumber(ttl) + 60000)
      return 2
    end
  end
  id = redis.call('LPOP', KEYS[3])
until not id
redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[4])
return 1
`;
