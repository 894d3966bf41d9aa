import { GENERAL_LUA, PRELUDE_LUA, SHARED_LUA } from './common.lua.js';

/**
 * First step of a queued shared acquire (a reader, a semaphore permit): hold beside the current
 * shared holders if they are fewer than the limit and nobody live is queued, otherwise join the
 * tail of the queue (so a reader that arrives after a waiting writer waits behind it). A shared
 * holding already held under this token (a grant to an earlier attempt) is re-validated: its TTL
 * restarts now.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters (see `common.lua.ts`).
 * ARGV: 1 token, 2 ttlMs, 3 waiter id, 4 queue entry TTL ms, 5 `1` when a `BLPOP` of the notify
 * list follows on the same connection (else `0`), 6 limit (0: no limit, a reader).
 * Returns the fence when acquired (`{1, fence, serverNowMs}` when a `BLPOP` follows),
 * `{0, waitHintMs, serverNowMs}` when queued, `{-2, limit, 0}` when the key's shared holders or
 * waiters use another limit (nothing queued).
 */
export const ENQUEUE_SHARED_LUA = `${PRELUDE_LUA}${SHARED_LUA}
local limit = tonumber(ARGV[6])
-- The cheapest path first, before the general helpers are defined: nobody queued and room beside
-- the holders. Skipped when a BLPOP follows (the key was contended last time).
if ARGV[5] ~= '1' and redis.call('EXISTS', KEYS[3]) == 0 then
  local fence = fast_shared(ARGV[1], ARGV[2], limit)
  if fence then return fence end
end
${GENERAL_LUA}
-- A BLPOP sent right behind this script (ARGV[5] == '1') must not block unless queued.
local function wake()
  if ARGV[5] == '1' then notify(ARGV[3], 'w', tonumber(ARGV[4])) end
end
local function granted(fence, now)
  if ARGV[5] ~= '1' then return fence end
  wake()
  return {1, fence, now}
end
local now = now_ms()
local kind, count, held_limit = holding(now)
if kind == 's' then
  if held_limit ~= limit then
    wake()
    return {-2, held_limit, 0}
  end
  if redis.call('ZSCORE', SHARED, ARGV[1]) then
    redis.call('ZADD', SHARED, now + ARGV[2], ARGV[1])
    keep_shared(limit, now, ARGV[2])
    return granted(redis.call('HGET', FENCES_OF, ARGV[1]), now)
  end
else
  local other = queued_limit_other_than(limit, now)
  if other then
    wake()
    return {-2, other, 0}
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  promote(now)
  kind, count, held_limit = holding(now)
end
if redis.call('EXISTS', KEYS[3]) == 0 and fits(kind, count, held_limit, limit) then
  local fence = add_shared(ARGV[1], ARGV[2], now)
  keep_shared(limit, now, ARGV[2])
  return granted(fence, now)
end
enqueue(ARGV[3], ARGV[1], ARGV[2], limit, tonumber(ARGV[4]), now, true)
return {0, wait_hint(now, limit), now}
`;
