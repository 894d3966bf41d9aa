/**
 * The per-node Lua scripts of the Redlock backend. Each node is an independent Redis master; a
 * script touches one node's copy of a lock and nothing else, so every operation is one round trip
 * per node, sent to all nodes in parallel.
 *
 * Per node, a lock is a hash `{ t: token, f: fence }` with the lease's TTL (`PEXPIRE`), and the
 * node has one fence counter for all its locks (bounded state: one key per node, not per lock).
 * A release publishes its token on the lock's channel so that waiters subscribed on any node wake
 * up (once per release: every node announces it, the token tells the copies apart).
 *
 * Restart guard (see `RedlockBackendOptions.restartGuardMs`): a node whose uptime is shorter than
 * the guard may have lost locks it granted before a restart without persistence, so it refuses to
 * vote (acquire answers `-3`). Fences do not need the guard: see `fences.ts`.
 */
import { luaScript } from '../redis/connection.js';

/**
 * `young()` is true when the guard (ARGV[g], whole seconds, 0 = off) is longer than this node's
 * uptime. `INFO` rounds the uptime, so one second is taken off it to stay on the safe side.
 */
const YOUNG_LUA = `
local function young(guard)
  if guard <= 0 then return false end
  local info = redis.call('INFO', 'server')
  local uptime = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
  return uptime - 1 < guard
end
`;

/**
 * acquire: `SET NX PX` in hash form. KEYS: 1 lock. ARGV: 1 token, 2 ttlMs, 3 guard seconds.
 * Returns `{1}` taken (or already this token's: TTL reset), `{0, pttl, holder}` held by another
 * token, `{-3}` refused by the restart guard.
 */
export const ACQUIRE = luaScript(
  'acquire',
  `${YOUNG_LUA}
if young(tonumber(ARGV[3])) then return {-3} end
local holder = redis.call('HGET', KEYS[1], 't')
if holder and holder ~= ARGV[1] then return {0, redis.call('PTTL', KEYS[1]), holder} end
redis.call('HSET', KEYS[1], 't', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1}
`,
);

/**
 * extend: reset the TTL if the token still holds the lock here. KEYS: 1 lock. ARGV: 1 token,
 * 2 ttlMs. Returns 1 extended, 0 nobody holds it here, -1 another token does.
 */
export const EXTEND = luaScript(
  'extend',
  `
local holder = redis.call('HGET', KEYS[1], 't')
if not holder then return 0 end
if holder ~= ARGV[1] then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`,
);

/**
 * release: delete the lock if the token holds it here, and tell waiters if ARGV[3] is '1'. KEYS:
 * 1 lock. ARGV: 1 token, 2 channel, 3 announce. Returns 1 released, 0 nobody held it here, -1
 * another token does. A failed attempt clears its partial wins without announcing them: waking
 * every waiter for a lock nobody held would only start another round of split votes.
 */
export const RELEASE = luaScript(
  'release',
  `
local holder = redis.call('HGET', KEYS[1], 't')
if not holder then return 0 end
if holder ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
if ARGV[3] == '1' then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return 1
`,
);

/**
 * forceRelease: delete whoever holds it. KEYS: 1 lock. ARGV: 1 channel, 2 a marker unique to this
 * call (announced as a release's token is). Returns 1 if removed.
 */
export const FORCE_RELEASE = luaScript(
  'forceRelease',
  `
local removed = redis.call('DEL', KEYS[1])
if removed == 1 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return removed
`,
);

/**
 * fence read: this node's counter. KEYS: 1 counter. Returns it as a string, or -1 when this node
 * has none: it never issued a fence, or lost its counter in a restart without persistence.
 */
export const FENCE_READ = luaScript(
  'acquire',
  `
return redis.call('GET', KEYS[1]) or -1
`,
);

/**
 * fence write: counter = max(counter, fence), and record the fence on the lock if the token still
 * holds it here (for inspect). Always safe, on any node: it can only raise the counter.
 * KEYS: 1 counter, 2 lock. ARGV: 1 fence (decimal string), 2 token. Returns 1.
 */
export const FENCE_WRITE = luaScript(
  'acquire',
  `
local current = redis.call('GET', KEYS[1])
local fence = ARGV[1]
local higher = (not current) or #current < #fence or (#current == #fence and current < fence)
if higher then redis.call('SET', KEYS[1], fence) end
if redis.call('HGET', KEYS[2], 't') == ARGV[2] then redis.call('HSET', KEYS[2], 'f', fence) end
return 1
`,
);

/** inspect: `{token, fence, pttl}` of this node's copy, or nil when free. KEYS: 1 lock. */
export const INSPECT = luaScript(
  'inspect',
  `
local h = redis.call('HMGET', KEYS[1], 't', 'f')
if not h[1] then return nil end
return {h[1], h[2] or '0', redis.call('PTTL', KEYS[1])}
`,
);
