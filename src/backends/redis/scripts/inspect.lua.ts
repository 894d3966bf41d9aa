/**
 * inspect: the current holders, read-only.
 *
 * KEYS: 1 lock, 2 fence counter (unused), 3 queue.
 * ARGV: none.
 * Returns `false` (nil) when free, else `{mode, limit, queueLength, token, fence, remainingMs,
 * …}` with one `token, fence, remainingMs` triple per holder: `mode` is `exclusive` (one holder;
 * its remaining TTL) or `shared` (every live shared holder; `limit` 0 means none).
 */
export const INSPECT_LUA = `
local value = redis.call('GET', KEYS[1])
if not value then
  return false
end
local waiters = redis.call('LLEN', KEYS[3])
if string.byte(value, 1) ~= 255 then
  local sep = string.find(value, '\\255', 1, true)
  local token, fence = value, redis.call('GET', KEYS[1] .. ':f') or '0'
  if sep then token, fence = string.sub(value, 1, sep - 1), string.sub(value, sep + 1) end
  return {'exclusive', 0, waiters, token, fence, redis.call('PTTL', KEYS[1])}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1] .. ':s', '(' .. now, '+inf', 'WITHSCORES')
if #live == 0 then
  return false
end
local reply = {'shared', tonumber(string.sub(value, 2)), waiters}
for i = 1, #live, 2 do
  reply[#reply + 1] = live[i]
  reply[#reply + 1] = redis.call('HGET', KEYS[1] .. ':h', live[i]) or '0'
  reply[#reply + 1] = tonumber(live[i + 1]) - now
end
return reply
`;
