import { GENERAL_LUA, PRELUDE_LUA, SHARED_LUA } from './common.lua.js';

/**
 * tryAcquire, shared (a reader, a semaphore permit): hold beside the current shared holders if
 * they are fewer than the limit and nobody live is queued (a waiting writer keeps later readers
 * out); never queue, never wait.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters (see `common.lua.ts`).
 * ARGV: 1 token, 2 ttlMs, 3 limit (0: no limit, a reader).
 * Returns `{1, fence}` when acquired, `{0, waitHintMs}` when it would have to wait, `{-2, limit}`
 * when the key's shared holders or waiters use another limit.
 */
export const TRY_ACQUIRE_SHARED_LUA = `${PRELUDE_LUA}${SHARED_LUA}
local limit = tonumber(ARGV[3])
-- The cheapest path first, before the general helpers are defined.
if redis.call('EXISTS', KEYS[3]) == 0 then
  local fence = fast_shared(ARGV[1], ARGV[2], limit)
  if fence then return {1, fence} end
end
${GENERAL_LUA}
local now = now_ms()
local kind, count, held_limit = holding(now)
if kind == 's' then
  if held_limit ~= limit then return {-2, held_limit} end
else
  local other = queued_limit_other_than(limit, now)
  if other then return {-2, other} end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  promote(now)
  if redis.call('EXISTS', KEYS[3]) == 1 then return {0, wait_hint(now, limit)} end
  kind, count, held_limit = holding(now)
end
if not fits(kind, count, held_limit, limit) then return {0, wait_hint(now, limit)} end
local fence = add_shared(ARGV[1], ARGV[2], now)
keep_shared(limit, now, ARGV[2])
return {1, fence}
`;
