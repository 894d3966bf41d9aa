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
-- A shared holder leaves: without the general helpers when nobody waits, or when its permit goes
-- straight to the next waiter (a full semaphore's steady state).
if holder and not batch and string.byte(holder, 1) == 255 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local expires_at = redis.call('ZSCORE', SHARED, ARGV[1])
  if expires_at and tonumber(expires_at) > now then
    if redis.call('EXISTS', KEYS[3]) == 0 then
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
    -- The handoff of one permit: every permit in use by a live holder, and a live shared waiter
    -- at the head, which takes this holder's place (the one behind it would not fit). Anything
    -- else (expired holders, a free permit, a dead or exclusive head) takes the general path.
    local limit = tonumber(string.sub(holder, 2))
    local oldest = redis.call('ZRANGE', SHARED, 0, 0, 'WITHSCORES')[2]
    if limit > 0 and tonumber(oldest) > now and redis.call('ZCARD', SHARED) == limit then
      local id = redis.call('LINDEX', KEYS[3], 0)
      local entry = redis.call('HGET', KEYS[4], id)
      if entry and string.byte(entry, 1) == 115 then
        local _, entry_expiry, ttl, token = string.match(entry, '^s(%d+)|(%d+)|(%d+)|(.*)$')
        if tonumber(entry_expiry) > now then
          redis.call('ZREM', SHARED, ARGV[1])
          redis.call('HDEL', FENCES_OF, ARGV[1])
          redis.call('LPOP', KEYS[3])
          redis.call('HDEL', KEYS[4], id)
          local fence = add_shared(token, ttl, now)
          if tonumber(expires_at) > now + ttl then
            expire_with_longest()
          else
            keep_shared(limit, now, ttl)
          end
          local list = KEYS[1] .. ':n:' .. id
          redis.call('RPUSH', list, 'g|' .. fence .. '|' .. now)
          redis.call('PEXPIRE', list, tonumber(ttl) + 60000)
          return 2
        end
      end
    end
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
