import { GENERAL_LUA, PRELUDE_LUA, SHARED_LUA } from './common.lua.js';

/**
 * release: end the token's holding (exclusive or shared), and hand the lock straight to the
 * longest live waiters that may hold now (who then need no further round trip: their `BLPOP`
 * returns the grant): one exclusive waiter, or a batch of shared ones.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters.
 * ARGV: 1 token.
 * Returns 2 released and handed to a waiter, 1 released, 0 expired (nobody held it), -1
 * not-owner (others hold it).
 */
export const RELEASE_LUA = `${PRELUDE_LUA}
local holder = redis.call('GET', KEYS[1])
-- Set when the exclusive holder left and a shared waiter heads the queue: served further down.
local batch = false
if holder and held_by(holder, ARGV[1]) then
  local id = redis.call('LPOP', KEYS[3])
  if not id then
    redis.call('DEL', KEYS[1])
    return 1
  end
  -- Hand the lock to the longest live waiter. The hot path of a contended mutex, so written out
  -- in as few calls as possible: the lock is overwritten rather than deleted first, and entries
  -- of dead waiters (heartbeat expired) are dropped on the way.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  repeat
    local entry = redis.call('HGET', KEYS[4], id)
    if entry then
      local expires_at, ttl, token = string.match(entry, '^(%d+)|(%d+)|(.*)$')
      if not expires_at then
        -- A shared waiter: it may come with a batch, granted below.
        redis.call('LPUSH', KEYS[3], id)
        batch = true
        break
      end
      redis.call('HDEL', KEYS[4], id)
      if tonumber(expires_at) > now then
        local fence = next_fence()
        redis.call('SET', KEYS[1], token .. SEP .. fence, 'PX', ttl)
        local list = KEYS[1] .. ':n:' .. id
        redis.call('RPUSH', list, 'g|' .. fence .. '|' .. now)
        redis.call('PEXPIRE', list, tonumber(ttl) + 60000)
        return 2
      end
    end
    id = redis.call('LPOP', KEYS[3])
  until not id
  redis.call('DEL', KEYS[1])
  if not batch then
    redis.call('DEL', KEYS[4])
    return 1
  end
end
${SHARED_LUA}
-- A shared holder leaves and nobody waits: without the general helpers.
if holder and not batch and string.byte(holder, 1) == 255
    and redis.call('EXISTS', KEYS[3]) == 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local expires_at = redis.call('ZSCORE', SHARED, ARGV[1])
  if expires_at and tonumber(expires_at) > now then
    redis.call('ZREM', SHARED, ARGV[1])
    redis.call('HDEL', FENCES_OF, ARGV[1])
    local last = redis.call('ZRANGE', SHARED, -1, -1, 'WITHSCORES')[2]
    if not last then
      redis.call('DEL', KEYS[1], SHARED, FENCES_OF)
    elseif tonumber(last) < tonumber(expires_at) then
      -- It was the longest-lived holder: the rest (and the marker) expire sooner.
      expire_with_longest()
    end
    return 1
  end
end
-- Everything else (not the owner, expired, waiters to serve): only here are the general helpers
-- defined (defining them costs every call that reaches them).
${GENERAL_LUA}
local now = now_ms()
if batch then
  return promote(now) > 0 and 2 or 1
end
if holder and string.byte(holder, 1) == 255 then
  local expires_at = redis.call('ZSCORE', SHARED, ARGV[1])
  if expires_at and tonumber(expires_at) > now then
    redis.call('ZREM', SHARED, ARGV[1])
    redis.call('HDEL', FENCES_OF, ARGV[1])
    shared_changed(now)
    return promote(now) > 0 and 2 or 1
  end
  if sweep(now) > 0 then return -1 end
elseif holder then
  return -1
end
-- Nobody holds it (it expired): serve the queue if it has waiters.
if redis.call('EXISTS', KEYS[3]) == 1 then promote(now) end
return 0
`;
