import { COMMON_LUA } from './common.lua.js';

/**
 * extend: restart the lease's TTL, only if the token still holds the lock. A lock found free
 * with live waiters is handed to the longest one.
 *
 * KEYS: 1 lock, 2 fence, 3 queue, 4 waiters.
 * ARGV: 1 token, 2 ttlMs.
 * Returns 1 extended, 0 expired (nobody holds it), -1 not-owner (another token holds it).
 */
export const EXTEND_LUA = `${COMMON_LUA}
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  promote_if_free()
  return 0
end
return -1
`;
