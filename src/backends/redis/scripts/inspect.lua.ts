/**
 * inspect: the current holder, read-only.
 *
 * KEYS: 1 lock, 2 fence, 3 queue.
 * ARGV: none.
 * Returns `false` (nil) when free, else `{token, fence, pttlMs, queueLength}`.
 */
export const INSPECT_LUA = `
local holder = redis.call('GET', KEYS[1])
if not holder then
  return false
end
return {holder, redis.call('GET', KEYS[2]) or '0', redis.call('PTTL', KEYS[1]), redis.call('LLEN', KEYS[3])}
`;
