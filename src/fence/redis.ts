/**
 * The Redis guard: a value in a Redis hash whose every access runs one Lua script that checks the
 * caller's fence and records it, atomically (Redis runs a script alone).
 *
 * The key is a hash with three fields: `value` (yours), `fence` (the highest exclusive fence seen)
 * and `sharedFence` (the highest shared fence seen). One key keeps it Redis Cluster-safe.
 *
 * Clients: an ioredis `Redis` or `Cluster` today. The guard talks to the client through
 * {@link ScriptCaller} only (run a script by SHA, or by source after `NOSCRIPT`), so another
 * client (node-redis's `evalSha`/`eval`) needs one more adapter in {@link scriptCallerOf}, and
 * nothing else changes.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';
import { toLockError, type ErrorContext } from '../backends/redis/ioredis/errors.js';
import { accessOf, type FenceHolder, type FenceState } from './rules.js';
import { StaleFenceError } from './stale-fence-error.js';

/**
 * The client is the caller's: we know none of its passwords (ioredis keeps them out of its
 * messages) and do not watch its connection, so a failure is reported as the client gave it.
 */
const CALLER_CLIENT: ErrorContext = { secrets: [], connectionError: () => undefined };

/**
 * The part of an ioredis `Redis` or `Cluster` the guard uses (typed structurally so that this
 * module's types do not require ioredis to be installed).
 */
export interface IoredisScriptClient {
  evalsha(sha: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
}

/** Runs a Lua script on one key: what a client adapter provides. */
export interface ScriptCaller {
  /** Run the script known by `sha` (rejects with a `NOSCRIPT` error if the server lacks it). */
  bySha(sha: string, key: string, args: readonly string[]): Promise<unknown>;
  /** Run `source` (and let the server cache it). */
  bySource(source: string, key: string, args: readonly string[]): Promise<unknown>;
}

/** The adapter for a supported client. */
export function scriptCallerOf(client: IoredisScriptClient): ScriptCaller {
  if (typeof client?.evalsha !== 'function' || typeof client.eval !== 'function') {
    throw new InvalidArgumentError('client', 'must be an ioredis Redis or Cluster instance');
  }
  return {
    bySha: (sha, key, args) => client.evalsha(sha, 1, key, ...args),
    bySource: (source, key, args) => client.eval(source, 1, key, ...args),
  };
}

/**
 * KEYS[1]: the guarded hash. ARGV[1]: the access's fence (decimal); ARGV[2]: '1' for a shared
 * access; ARGV[3]: 'read', 'write' or 'register'; ARGV[4]: the value to write.
 * Returns {1, value} (value nil unless read) when the access went ahead, {0, fence} with the
 * outranking fence when it is stale. Fences are compared as decimal strings: Lua numbers are
 * doubles, exact only to 2^53.
 */
const SCRIPT = `
local function less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local fence, shared, op = ARGV[1], ARGV[2] == '1', ARGV[3]
local seen = redis.call('HMGET', KEYS[1], 'fence', 'sharedFence')
local exclusive, sharedSeen = seen[1], seen[2]
if exclusive and less(fence, exclusive) then return {0, exclusive} end
if not shared and sharedSeen and less(fence, sharedSeen) then return {0, sharedSeen} end
local field, mine = 'fence', exclusive
if shared then field, mine = 'sharedFence', sharedSeen end
if not mine or less(mine, fence) then redis.call('HSET', KEYS[1], field, fence) end
if op == 'write' then
  redis.call('HSET', KEYS[1], 'value', ARGV[4])
  return {1}
end
if op == 'read' then return {1, redis.call('HGET', KEYS[1], 'value')} end
return {1}
`;
const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

/** A value in Redis that refuses stale holders. Made by {@link redisFence}. */
export interface RedisFencedValue {
  /** The guarded key. */
  readonly key: string;
  /**
   * Check `holder`'s fence, record it, and return the value (`null` if none was written).
   * @throws StaleFenceError if a newer holder has accessed the key (nothing recorded).
   */
  read(holder: FenceHolder): Promise<string | null>;
  /**
   * Check `holder`'s fence, record it, and store `value`, in one step.
   * @throws StaleFenceError if a newer holder has accessed the key (nothing written).
   */
  write(value: string, holder: FenceHolder): Promise<void>;
  /**
   * Check and record `holder`'s fence without touching the value: a new holder that reads the
   * resource some other way registers here first, so that stale holders are refused from then on.
   * @throws StaleFenceError if a newer holder has accessed the key.
   */
  register(holder: FenceHolder): Promise<void>;
  /**
   * The value now, without checking or recording a fence: for reports and tools, never for a
   * holder's read-modify-write (a stale holder could then write after a newer holder's peek).
   */
  peek(): Promise<string | null>;
  /** The highest fences the key has seen (no check). */
  fences(): Promise<FenceState>;
}

/**
 * Guard the Redis hash `key` with fences.
 *
 * @param client An ioredis `Redis` or `Cluster` (yours: the guard never closes it).
 * @example
 * ```ts
 * const account = redisFence(redis, 'account:42');
 * await locks.withLock('account:42', async (lease) => {
 *   const balance = Number((await account.read(lease)) ?? 0); // registers lease.fence
 *   await account.write(String(balance + 10), lease); // refused if a newer holder came in
 * });
 * ```
 */
export function redisFence(client: IoredisScriptClient, key: string): RedisFencedValue {
  const caller = scriptCallerOf(client);
  if (typeof key !== 'string' || key === '') {
    throw new InvalidArgumentError('key', 'must be a non-empty string');
  }

  const run = async (op: string, holder: FenceHolder, value = ''): Promise<unknown> => {
    const access = accessOf(holder);
    const args = [String(access.fence), access.shared ? '1' : '0', op, value];
    let reply: unknown;
    try {
      reply = await caller.bySha(SCRIPT_SHA, key, args).catch((error: unknown) => {
        if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
          return caller.bySource(SCRIPT, key, args);
        }
        throw error;
      });
    } catch (error) {
      throw toLockError(error, `fenced ${op} of "${key}"`, CALLER_CLIENT);
    }
    const [ok, result] = reply as [number, string | null | undefined];
    if (ok === 0) throw new StaleFenceError(key, access.fence, BigInt(result as string));
    return result ?? null;
  };

  return {
    key,
    read: async (holder) => (await run('read', holder)) as string | null,
    write: async (value, holder) => {
      if (typeof value !== 'string') throw new InvalidArgumentError('value', 'must be a string');
      await run('write', holder, value);
    },
    register: async (holder) => {
      await run('register', holder);
    },
    async peek() {
      const [value] = await readFields(caller, key, 'value');
      return value ?? null;
    },
    async fences() {
      const [fence, sharedFence] = await readFields(caller, key, 'fence', 'sharedFence');
      return {
        fence: fence == null ? null : BigInt(fence),
        sharedFence: sharedFence == null ? null : BigInt(sharedFence),
      };
    },
  };
}

/** `HMGET` through the script caller, which keeps the client surface to EVAL/EVALSHA. */
async function readFields(
  caller: ScriptCaller,
  key: string,
  ...fields: string[]
): Promise<Array<string | null>> {
  try {
    return (await caller.bySource(
      "return redis.call('HMGET', KEYS[1], unpack(ARGV))",
      key,
      fields,
    )) as Array<string | null>;
  } catch (error) {
    throw toLockError(error, `read "${key}"`, CALLER_CLIENT);
  }
}
