import { COMMON_LUA } from './common.lua.js';

/**
 * A waiter gives up (abort, deadline, close): leave the queue, and if the lock was granted to it
 * meanwhile, release it and hand it on, so that nothing is left held or queued. Wakes the
 * waiter's `BLPOP` so its connection can be reused.
 *
 * KEYS: 1 lock, 2 fence, 3 queue, 4 waiters (the waiter's notify list is derived from its id).
 * ARGV: 1 token, 2 waiter id, 3 wake marker TTL ms.
 * Returns 1 if a granted lock was released, else 0.
 */
export const LEAVE_LUA = `${COMMON_LUA}
local released = 0
if redis.call('HDEL', KEYS[4], ARGV[2]) == 1 then
  redis.call('LREM', KEYS[3], 1, ARGV[2])
elseif redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
end
promote_if_free()
notify(ARGV[2], 'w', tonumber(ARGV[3]))
return released
`;
