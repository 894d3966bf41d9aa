import { COMMON_LUA } from './common.lua.js';

/**
 * release: delete the lock only if the token holds it, and hand it straight to the longest live
 * waiter (who then needs no further round trip: its `BLPOP` returns the grant).
 *
 * KEYS: 1 lock, 2 fence, 3 queue, 4 waiters.
 * ARGV: 1 token.
 * Returns 2 released and handed to a waiter, 1 released, 0 expired (nobody held it), -1 not-owner (another token holds it).
 */
export const RELEASE_LUA = `${COMMON_LUA}
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if promote_if_free() then
    return 2
  end
  return 1
end
if not holder then
  promote_if_free()
  return 0
end
return -1
`;
