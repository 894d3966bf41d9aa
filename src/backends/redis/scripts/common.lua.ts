/**
 * Lua shared by every lock script (prepended to each). All scripts use the same key layout, so
 * that every key of one lock shares one Redis Cluster hash tag (see `../keys.ts`):
 *
 * - `KEYS[1]` lock: a string holding the holder's token, with `PX` = the lease's TTL.
 * - `KEYS[2]` fence counter: `INCR`ed on every grant, never expires (fences outlive leases).
 * - `KEYS[3]` queue: a list of waiter ids in arrival order (`RPUSH` to join, `LPOP` to serve).
 * - `KEYS[4]` waiters: a hash, waiter id -> `"<entryExpiresAtMs>|<ttlMs>|<token>"`. An entry whose
 *   expiry (server clock) has passed belongs to a waiter that stopped heartbeating: it is skipped.
 * - A waiter's notify list is `KEYS[1] .. ':n:' .. id` (same hash tag, hence same slot): a grant
 *   pushes `"g|<fence>|<grantServerMs>"` there, a terminal step pushes the wake marker `"w"`; the
 *   waiter is blocked on it with `BLPOP`.
 *
 * The current holder's fence is the counter's value: it only moves when the lock is granted.
 */
export const COMMON_LUA = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Takes the lock for token; returns the new fence (a Lua number: exact below 2^53, that is for
-- a million grants a second during 285 years).
local function grant(token, ttl)
  redis.call('SET', KEYS[1], token, 'PX', ttl)
  return redis.call('INCR', KEYS[2])
end

-- Pushes message onto waiter id's notify list; a wake marker first drops a grant not yet read.
local function notify(id, message, ttl)
  local list = KEYS[1] .. ':n:' .. id
  if message == 'w' then redis.call('DEL', list) end
  redis.call('RPUSH', list, message)
  redis.call('PEXPIRE', list, ttl)
end

-- Hands the free lock to the longest-waiting live waiter and wakes it. Dead entries on the way
-- are dropped. Returns the waiter id and its fence, or false when nobody live is queued.
local function promote(now)
  while true do
    local id = redis.call('LPOP', KEYS[3])
    if not id then
      redis.call('DEL', KEYS[4])
      return false
    end
    local entry = redis.call('HGET', KEYS[4], id)
    if entry then
      redis.call('HDEL', KEYS[4], id)
      local expires_at, ttl, token = string.match(entry, '^(%d+)|(%d+)|(.*)$')
      if tonumber(expires_at) > now then
        local fence = grant(token, ttl)
        -- Plain concatenation (cheaper than string.format): integers below 1e14 print exactly.
        notify(id, 'g|' .. fence .. '|' .. now, tonumber(ttl) + 60000)
        return id, fence
      end
    end
  end
end

-- Serves the queue if the lock is free (its holder expired or left without a handoff).
local function promote_if_free()
  if redis.call('EXISTS', KEYS[3]) == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
    return promote(now_ms())
  end
  return false
end

-- Joins the queue (or refreshes the entry) and keeps the queue alive while someone heartbeats.
local function enqueue(id, token, ttl, entry_ttl, now, append)
  if append then redis.call('RPUSH', KEYS[3], id) end
  redis.call('HSET', KEYS[4], id, (now + entry_ttl) .. '|' .. ttl .. '|' .. token)
  redis.call('PEXPIRE', KEYS[3], entry_ttl * 2)
  redis.call('PEXPIRE', KEYS[4], entry_ttl * 2)
end
`;
