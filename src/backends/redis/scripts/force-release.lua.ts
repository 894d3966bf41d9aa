import { COMMON_LUA, PRELUDE_LUA } from './common.lua.js';

/**
 * forceRelease (operators): remove every holder of the lock, exclusive or shared, and serve the
 * queue. The fence counter stays, so the next holder's fence is still greater.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters.
 * ARGV: none.
 * Returns 1 if a holding was removed, else 0.
 */
export const FORCE_RELEASE_LUA = `${PRELUDE_LUA}${COMMON_LUA}
local removed = redis.call('DEL', KEYS[1])
redis.call('DEL', SHARED, FENCES_OF)
promote(now_ms())
return removed
`;
