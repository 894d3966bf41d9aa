import { COMMON_LUA } from './common.lua.js';

/**
 * forceRelease (operators): delete the lock whoever holds it, and hand it to the longest live
 * waiter. The fence counter stays, so the next holder's fence is still greater.
 *
 * KEYS: 1 lock, 2 fence, 3 queue, 4 waiters.
 * ARGV: none.
 * Returns 1 if a holding was removed, else 0.
 */
export const FORCE_RELEASE_LUA = `${COMMON_LUA}
local removed = redis.call('DEL', KEYS[1])
promote_if_free()
return removed
`;
