import { COMMON_LUA, PRELUDE_LUA } from './common.lua.js';

/**
 * A waiter gives up (abort, deadline, close): leave the queue, and if the lock was granted to it
 * meanwhile (in either mode), release that holding, so that nothing is left held or queued. The
 * queue is then served (a writer that leaves may have held back the readers behind it). Wakes
 * the waiter's `BLPOP` so its connection can be reused.
 *
 * KEYS: 1 lock, 2 fence counter, 3 queue, 4 waiters (the notify list is derived from the id).
 * ARGV: 1 token, 2 waiter id, 3 wake marker TTL ms.
 * Returns 1 if a granted holding was released, else 0.
 */
export const LEAVE_LUA = `${PRELUDE_LUA}${COMMON_LUA}
local released = 0
local now = now_ms()
if redis.call('HDEL', KEYS[4], ARGV[2]) == 1 then
  redis.call('LREM', KEYS[3], 1, ARGV[2])
else
  local holder = redis.call('GET', KEYS[1])
  if holder and held_by(holder, ARGV[1]) then
    redis.call('DEL', KEYS[1])
    released = 1
  elseif holder and string.byte(holder, 1) == 255
      and redis.call('ZREM', SHARED, ARGV[1]) == 1 then
    redis.call('HDEL', FENCES_OF, ARGV[1])
    shared_changed(now)
    released = 1
  end
end
promote(now)
notify(ARGV[2], 'w', tonumber(ARGV[3]))
return released
`;
