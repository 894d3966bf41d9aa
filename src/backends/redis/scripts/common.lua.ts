/**
 * Lua shared by the lock scripts. All scripts use the same key layout, so that every key of one
 * lock shares one Redis Cluster hash tag (see `../keys.ts`):
 *
 * - `KEYS[1]` the holding, with the holding's TTL: `<token>\255<fence>` while an exclusive holder
 *   (a mutex, a writer) holds it; the marker `\255<limit>` while shared holders (readers: limit
 *   0, meaning none; semaphore permits: the semaphore's limit) hold it, with the TTL of the
 *   longest-lived of them. Byte 255 never occurs in UTF-8, so in no token. Either way the key
 *   exists exactly while the lock is held: the mutex's cheap paths only ask whether it exists.
 * - `KEYS[1]:s` the shared holders, a sorted set token -> expiry (server clock, ms), and
 *   `KEYS[1]:h` their fences, a hash token -> fence; both expire with the marker. Holders whose
 *   expiry has passed are swept by every script that reads them.
 * - `KEYS[2]` the fence counter of the lock's Cluster slot: `INCR`ed on every grant, of either
 *   mode, never expires (see `../keys.ts` for why fences still strictly increase per lock).
 * - `KEYS[3]` queue: a list of waiter ids in arrival order (`RPUSH` to join, served from the head).
 * - `KEYS[4]` waiters: a hash, waiter id -> `"<entryExpiresAtMs>|<ttlMs>|<token>"` for an
 *   exclusive waiter, `"s<limit>|<entryExpiresAtMs>|<ttlMs>|<token>"` for a shared one. An entry
 *   whose expiry (server clock) has passed belongs to a waiter that stopped heartbeating: it is
 *   skipped.
 * - A waiter's notify list is `KEYS[1] .. ':n:' .. id` (same hash tag, hence same slot): a grant
 *   pushes `"g|<fence>|<grantServerMs>"` there, a terminal step pushes the wake marker `"w"`; the
 *   waiter is blocked on it with `BLPOP`.
 *
 * The rules are those of `core/kinds.ts`: an exclusive holder holds alone; shared holders hold
 * together, fewer than their limit; nobody passes a live waiter queued before it (so once a
 * writer waits, later readers queue behind it); one limit per key. A release or an expiry grants
 * the longest run of waiters at the head that may hold together: one writer, or a batch of
 * readers or permits.
 */

/**
 * The part every granting script needs, even on its cheapest path: the separator, ownership of
 * an exclusive holding, and the next fence.
 */
export const PRELUDE_LUA = `
local SEP = '\\255'

-- Whether the holding \`value\` is token's exclusive holding.
local function held_by(value, token)
  return string.byte(value, #token + 1) == 255 and string.sub(value, 1, #token) == token
end

-- The next fence of this lock: its slot's counter, incremented. A per-lock counter left by an
-- earlier version is folded in first (and deleted), so that the new fence still exceeds it.
local function next_fence()
  local legacy = redis.call('GET', KEYS[1] .. ':f')
  if legacy then
    redis.call('DEL', KEYS[1] .. ':f')
    if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(legacy) then
      redis.call('SET', KEYS[2], legacy)
    end
  end
  return redis.call('INCR', KEYS[2])
end
`;

/**
 * Shared holdings, for the cheap paths of the shared scripts (before `COMMON_LUA`, which uses it).
 * Requires `PRELUDE_LUA` before it.
 */
export const SHARED_LUA = `
local SHARED, FENCES_OF = KEYS[1] .. ':s', KEYS[1] .. ':h'

-- Adds token as a shared holder until now + ttl; returns its fence. The caller then calls
-- keep_shared() (once for a batch, with the longest TTL granted).
local function add_shared(token, ttl, now)
  local fence = next_fence()
  redis.call('ZADD', SHARED, now + ttl, token)
  redis.call('HSET', FENCES_OF, token, fence)
  return fence
end

-- Marks the lock as held by shared holders of limit (if it is not yet), and makes the marker and
-- the holders' keys live at least until now + ttl: they expire with the longest-lived holder.
local function keep_shared(limit, now, ttl)
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl == -2 then
    -- Relative TTLs from Redis's clock, which is no earlier than \`now\`: never before a holder's.
    redis.call('SET', KEYS[1], SEP .. limit, 'PX', ttl)
    redis.call('PEXPIRE', SHARED, ttl)
    redis.call('PEXPIRE', FENCES_OF, ttl)
  elseif pttl < tonumber(ttl) then
    local at = now + ttl
    redis.call('PEXPIREAT', KEYS[1], at)
    redis.call('PEXPIREAT', SHARED, at)
    redis.call('PEXPIREAT', FENCES_OF, at)
  end
end

-- The marker and the shared holders' keys expire with the longest-lived holder (called after a
-- holder left or shortened its TTL; there must be one left).
local function expire_with_longest()
  local last = redis.call('ZRANGE', SHARED, -1, -1, 'WITHSCORES')[2]
  redis.call('PEXPIREAT', KEYS[1], last)
  redis.call('PEXPIREAT', SHARED, last)
  redis.call('PEXPIREAT', FENCES_OF, last)
end

-- The cheapest shared grant: nobody queued (the caller checked), and the lock free or held by
-- shared holders of limit with room, none of them expired. Returns the fence, or nil when the
-- general path must decide (a holder to sweep, no room, another limit, an exclusive holder).
local function fast_shared(token, ttl, limit)
  local value = redis.call('GET', KEYS[1])
  if value and (string.byte(value, 1) ~= 255 or tonumber(string.sub(value, 2)) ~= limit) then
    return nil
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if value then
    local oldest = redis.call('ZRANGE', SHARED, 0, 0, 'WITHSCORES')[2]
    if not oldest or tonumber(oldest) <= now then return nil end
    if limit > 0 and redis.call('ZCARD', SHARED) >= limit then return nil end
  end
  local fence = add_shared(token, ttl, now)
  keep_shared(limit, now, ttl)
  return fence
end
`;

/**
 * Helpers of the less travelled paths (each script defines them only where it needs them).
 * Requires `PRELUDE_LUA` and `SHARED_LUA` before it.
 */
export const GENERAL_LUA = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An exclusive holding's token and fence (a bare token was written by an earlier version).
local function holder_of(value)
  local sep = string.find(value, SEP, 1, true)
  if not sep then return value, redis.call('GET', KEYS[1] .. ':f') or '0' end
  return string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
end

-- Drops shared holders whose TTL has passed; returns how many are left. With none left, the
-- marker goes too: the lock is free.
local function sweep(now)
  local gone = redis.call('ZRANGEBYSCORE', SHARED, '-inf', now)
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', SHARED, '-inf', now)
    for i = 1, #gone, 1000 do
      redis.call('HDEL', FENCES_OF, unpack(gone, i, math.min(i + 999, #gone)))
    end
  end
  local left = redis.call('ZCARD', SHARED)
  if left == 0 then redis.call('DEL', KEYS[1], SHARED, FENCES_OF) end
  return left
end

-- The lock's holding: 'x' and its value (exclusive); 's', the number of live shared holders and
-- their limit (0: none); or false when free.
local function holding(now)
  local value = redis.call('GET', KEYS[1])
  if not value then return false end
  if string.byte(value, 1) ~= 255 then return 'x', value end
  local left = sweep(now)
  if left == 0 then return false end
  return 's', left, tonumber(string.sub(value, 2))
end

-- Whether a request may hold beside the holding: exclusive (limit nil) only when it is free;
-- shared (limit 0: a reader) beside fewer shared holders than their limit.
local function fits(kind, count, held_limit, limit)
  if not limit then return not kind end
  if kind == 'x' then return false end
  return not kind or held_limit == 0 or count < held_limit
end

-- After a shared holder left (or changed its TTL): the lock is free if none is left, else the
-- marker and the holders' keys expire with the longest-lived of them.
local function shared_changed(now)
  if sweep(now) > 0 then expire_with_longest() end
end

-- Takes the lock exclusively for token; returns the fence.
local function grant(token, ttl)
  local fence = next_fence()
  redis.call('SET', KEYS[1], token .. SEP .. fence, 'PX', ttl)
  return fence
end

-- Pushes message onto waiter id's notify list; a wake marker first drops a grant not yet read.
local function notify(id, message, ttl)
  local list = KEYS[1] .. ':n:' .. id
  if message == 'w' then redis.call('DEL', list) end
  redis.call('RPUSH', list, message)
  redis.call('PEXPIRE', list, ttl)
end

-- A queue entry's expiry, lease TTL, token and, for a shared waiter, limit (nil: exclusive).
local function parse_entry(entry)
  if string.byte(entry, 1) == 115 then
    local limit, expires_at, ttl, token = string.match(entry, '^s(%d+)|(%d+)|(%d+)|(.*)$')
    return tonumber(expires_at), ttl, token, tonumber(limit)
  end
  local expires_at, ttl, token = string.match(entry, '^(%d+)|(%d+)|(.*)$')
  return tonumber(expires_at), ttl, token, nil
end

-- Serves the queue: grants the longest run of live waiters at its head that may hold now (one
-- exclusive waiter, or a batch of shared ones) and wakes each; dead entries on the way are
-- dropped. Returns how many were granted, and the fence of waiter \`me\` if it was one of them.
local function promote(now, me)
  local kind, count, held_limit = holding(now)
  local granted, mine, longest = 0, false, nil
  -- A full semaphore takes nobody (and an exclusive holder nobody either): no need to look.
  while kind ~= 'x' and not (kind == 's' and held_limit > 0 and count >= held_limit) do
    local id = redis.call('LINDEX', KEYS[3], 0)
    if not id then
      redis.call('DEL', KEYS[4])
      break
    end
    local entry = redis.call('HGET', KEYS[4], id)
    local expires_at, ttl, token, limit
    if entry then expires_at, ttl, token, limit = parse_entry(entry) end
    if entry and expires_at > now then
      if not fits(kind, count, held_limit, limit) then break end
      local fence
      if limit then
        fence = add_shared(token, ttl, now)
        kind, count, held_limit = 's', (count or 0) + 1, limit
        if not longest or tonumber(ttl) > tonumber(longest) then longest = ttl end
      else
        fence = grant(token, ttl)
        kind = 'x'
      end
      -- Plain concatenation (cheaper than string.format): integers below 1e14 print exactly.
      notify(id, 'g|' .. fence .. '|' .. now, ttl + 60000)
      granted = granted + 1
      if id == me then mine = fence end
    end
    redis.call('LPOP', KEYS[3])
    if entry then redis.call('HDEL', KEYS[4], id) end
  end
  if longest then keep_shared(held_limit, now, longest) end
  return granted, mine
end

-- Joins the queue (or refreshes the entry) and keeps the queue alive while someone heartbeats.
local function enqueue(id, token, ttl, limit, entry_ttl, now, append)
  if append then redis.call('RPUSH', KEYS[3], id) end
  local entry = (now + entry_ttl) .. '|' .. ttl .. '|' .. token
  if limit then entry = 's' .. limit .. '|' .. entry end
  redis.call('HSET', KEYS[4], id, entry)
  redis.call('PEXPIRE', KEYS[3], entry_ttl * 2)
  redis.call('PEXPIRE', KEYS[4], entry_ttl * 2)
end

-- The limit of a live shared waiter other than limit, if any: every shared holder and waiter of
-- a key uses one limit, so this is asked only while no shared holder shows the key's limit.
local function queued_limit_other_than(limit, now)
  for _, entry in ipairs(redis.call('HVALS', KEYS[4])) do
    local expires_at, _, _, other = parse_entry(entry)
    if other and other ~= limit and expires_at > now then return other end
  end
  return nil
end

-- Milliseconds until the holding in a request's way may end: the exclusive holder's TTL (or the
-- last shared holder's); for a shared request behind full permits, the soonest permit's.
local function wait_hint(now, limit)
  local value = redis.call('GET', KEYS[1])
  if limit and value and string.byte(value, 1) == 255 then
    local first = redis.call('ZRANGE', SHARED, 0, 0, 'WITHSCORES')[2]
    if first then return math.max(0, first - now) end
  end
  return redis.call('PTTL', KEYS[1])
end
`;

/** Everything but the prelude: `SHARED_LUA` and `GENERAL_LUA`. Requires `PRELUDE_LUA` before it. */
export const COMMON_LUA = `${SHARED_LUA}${GENERAL_LUA}`;
