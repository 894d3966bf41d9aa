import { COMMON_LUA, PRELUDE_LUA } from './common.lua.js';

/**
 * First step of a queued exclusive acquire (a mutex, a writer): take the lock if nobody holds it
 * and nobody live is queued, otherwise join the tail of the queue. A lock already held under
 * this token (a grant to an earlier attempt of the same request) is re-validated: its TTL
 * restarts now.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters (see `common.lua.ts`; the waiter's notify
 * list is derived from the lock key and its id).
 * ARGV: 1 token, 2 ttlMs, 3 waiter id, 4 queue entry TTL ms, 5 optional `1`: a `BLPOP` of the
 * notify list follows on the same connection, so a direct grant pushes a wake marker for it (sent
 * when the key was contended last time, so the caller expects to queue).
 * Returns the fence (an integer, the uncontended path: the cheapest reply to encode and parse)
 * or `{1, fence, serverNowMs}` when acquired, `{0, pttlMs, serverNowMs}` when queued.
 */
export const ENQUEUE_LUA = `${PRELUDE_LUA}
-- The uncontended path first, before the shared helpers are even defined: nobody queued and
-- the lock free, in as few calls as possible. Skipped when the caller expects to queue
-- (ARGV[5]: the key was contended last time); a free lock is still granted further down.
if ARGV[5] ~= '1' and redis.call('EXISTS', KEYS[3]) == 0
    and redis.call('EXISTS', KEYS[1]) == 0 then
  local fence = next_fence()
  redis.call('SET', KEYS[1], ARGV[1] .. SEP .. fence, 'PX', ARGV[2])
  return fence
end
local holder = redis.call('GET', KEYS[1])
if holder and not held_by(holder, ARGV[1]) then
  -- Held by someone else (or by shared holders): join the tail. The hot path of a contended
  -- lock, written out here so that it does not pay for defining the shared helpers below.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local entry_ttl = tonumber(ARGV[4])
  redis.call('RPUSH', KEYS[3], ARGV[3])
  redis.call('HSET', KEYS[4], ARGV[3], (now + entry_ttl) .. '|' .. ARGV[2] .. '|' .. ARGV[1])
  -- Every join renews the queue's keys, not only the join that creates them: under steady
  -- contention nobody waits long enough to heartbeat, and a queue that never empties would
  -- otherwise expire under its waiters (each then waited for its next heartbeat).
  redis.call('PEXPIRE', KEYS[3], entry_ttl * 2)
  redis.call('PEXPIRE', KEYS[4], entry_ttl * 2)
  return {0, redis.call('PTTL', KEYS[1]), now}
end
${COMMON_LUA}
-- A BLPOP sent right behind this script (ARGV[5] == '1') must not block on a direct grant.
local function granted(fence, now)
  if ARGV[5] == '1' then notify(ARGV[3], 'w', tonumber(ARGV[4])) end
  return {1, fence, now}
end
if holder then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local _, fence = holder_of(holder)
  return granted(fence)
end
local now = now_ms()
promote(now)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return granted(grant(ARGV[1], ARGV[2]), now)
end
enqueue(ARGV[3], ARGV[1], ARGV[2], nil, tonumber(ARGV[4]), now, true)
return {0, redis.call('PTTL', KEYS[1]), now}
`;
