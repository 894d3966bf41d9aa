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
if holder and holder ~= ARGV[1] then
  return -1
end
if holder then
  redis.call('DEL', KEYS[1])
end
-- Nobody queued: done, before the shared helpers are even defined.
if redis.call('EXISTS', KEYS[3]) == 0 then
  if holder then return 1 end
  return 0
end
${COMMON_LUA}
if holder then
  -- Just deleted, so free: hand it to the longest live waiter.
  if promote(now_ms()) then return 2 end
  return 1
end
promote_if_free()
return 0
`;
