/**
 * The Redis lock backend: each operation is one Lua script, so one round trip; waiters queue in
 * Redis and the release script hands the lock to the longest live waiter (see queued-acquire.ts).
 */
import type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  QueuedAcquireOptions,
  ReleaseOutcome,
} from '../../core/backend.js';
import type { Cluster } from 'ioredis';
import { BackendError, LockClosedError } from '../../core/errors.js';
import { BlockingPool } from './blocking-pool.js';
import { lockKeys, lockNameOf, scanPattern, type LockKeys } from './keys.js';
import { resolveOptions, type RedisBackendOptions, type ResolvedRedisOptions } from './options.js';
import { acquireInQueue, type Granted, type QueueContext } from './queued-acquire.js';
import { ENQUEUE_LUA } from './scripts/enqueue.lua.js';
import { EXTEND_LUA } from './scripts/extend.lua.js';
import { FORCE_RELEASE_LUA } from './scripts/force-release.lua.js';
import { INSPECT_LUA } from './scripts/inspect.lua.js';
import { LEAVE_LUA } from './scripts/leave.lua.js';
import { POLL_LUA } from './scripts/poll.lua.js';
import { RELEASE_LUA } from './scripts/release.lua.js';
import { TRY_ACQUIRE_LUA } from './scripts/try-acquire.lua.js';
import { luaScript, ScriptRunner, type RedisClient } from './script-runner.js';

const SCRIPTS = Object.freeze({
  tryAcquire: luaScript('tryAcquire', TRY_ACQUIRE_LUA),
  enqueue: luaScript('acquire', ENQUEUE_LUA),
  poll: luaScript('acquire', POLL_LUA),
  leave: luaScript('acquire', LEAVE_LUA),
  extend: luaScript('extend', EXTEND_LUA),
  release: luaScript('release', RELEASE_LUA),
  inspect: luaScript('inspect', INSPECT_LUA),
  forceRelease: luaScript('forceRelease', FORCE_RELEASE_LUA),
});

/** A lock's keys, and the same as the `KEYS` list most scripts take (shared, never mutated). */
interface CachedKeys {
  readonly keys: LockKeys;
  readonly list: readonly string[];
}

/** Locks whose keys are remembered (a release or extend follows every acquire) before a reset. */
const MAX_CACHED_KEYS = 1024;

/** See {@link redisBackend}. */
export class RedisBackend implements LockBackend {
  readonly name = 'redis';
  readonly capabilities: BackendCapabilities = Object.freeze({
    fencing: true,
    notify: false,
    fifo: true,
    crossProcess: true,
  });

  readonly #options: ResolvedRedisOptions;
  readonly #runner: ScriptRunner;
  readonly #pool: BlockingPool;
  readonly #queue: QueueContext;
  readonly #keyCache = new Map<string, CachedKeys>();
  #closed: Promise<void> | undefined;

  constructor(options: RedisBackendOptions) {
    this.#options = resolveOptions(options);
    this.#runner = new ScriptRunner(
      this.#options.client,
      this.#options.commandTimeoutMs,
      this.#options.secret,
    );
    this.#pool = new BlockingPool(this.#options.client, this.#options.maxBlockingConnections);
    this.#queue = {
      runner: this.#runner,
      pool: this.#pool,
      scripts: SCRIPTS,
      queueEntryTtlMs: this.#options.queueEntryTtlMs,
      pollIntervalMs: this.#options.pollIntervalMs,
      contended: new Set(),
      waits: new Map(),
      closing: () => this.#closed !== undefined,
    };
  }

  /** The ioredis client in use (yours, or the one built from `url`). */
  get client(): RedisClient {
    return this.#options.client;
  }

  async tryAcquire(request: AcquireRequest, options?: OperationOptions): Promise<AcquireResult> {
    this.#throwIfClosed();
    const reply = (await this.#runner.run(
      SCRIPTS.tryAcquire,
      this.#keysOf(request.key).list,
      [request.token, Math.ceil(request.ttlMs)],
      {
        signal: options?.signal,
        // Nobody will learn of a late success: give it back rather than block the key for a TTL.
        onLate: (late) => {
          if ((late as [number])[0] === 1) void this.release(request).catch(() => undefined);
        },
      },
    )) as [number, string | number];
    if (reply[0] === 1) return { acquired: true, fence: BigInt(reply[1]) };
    const remaining = Number(reply[1]);
    return remaining >= 0 ? { acquired: false, retryAfterMs: remaining } : { acquired: false };
  }

  acquire(request: AcquireRequest, options: QueuedAcquireOptions): Promise<Granted> {
    // Not an async function: one promise fewer between the reply and the caller.
    try {
      this.#throwIfClosed();
      const { keys, list } = this.#keysOf(request.key);
      return acquireInQueue(this.#queue, keys, list, request, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  async extend(lease: LeaseRef, ttlMs: number, options?: OperationOptions): Promise<ExtendResult> {
    this.#throwIfClosed();
    const code = await this.#runner.run(
      SCRIPTS.extend,
      this.#keysOf(lease.key).list,
      [lease.token, Math.ceil(ttlMs)],
      { signal: options?.signal },
    );
    if (code === 1) return { extended: true };
    return { extended: false, reason: code === 0 ? 'expired' : 'not-owner' };
  }

  async release(lease: LeaseRef, options?: OperationOptions): Promise<ReleaseOutcome> {
    this.#throwIfClosed();
    const code = await this.#runner.run(
      SCRIPTS.release,
      this.#keysOf(lease.key).list,
      [lease.token],
      {
        signal: options?.signal,
      },
    );
    if (code === 2) {
      // Handed to a waiter, maybe one in this process whose BLPOP answer arrived with ours: let
      // it run first rather than queue this caller's next request ahead of the new holder's work.
      await new Promise((resolve) => setImmediate(resolve));
      return 'released';
    }
    return code === 1 ? 'released' : code === 0 ? 'expired' : 'not-owner';
  }

  async inspect(key: string, options?: OperationOptions): Promise<LockInfo | null> {
    this.#throwIfClosed();
    const keys = lockKeys(this.#options.prefix, key);
    const reply = (await this.#runner.run(
      SCRIPTS.inspect,
      [keys.lock, keys.fence, keys.queue],
      [],
      {
        signal: options?.signal,
      },
    )) as [string, string, number, number] | null;
    if (!reply) return null;
    const [token, fence, remainingMs, waiters] = reply;
    return {
      key,
      token,
      fence: BigInt(fence),
      remainingMs: remainingMs >= 0 ? remainingMs : null,
      waiters,
    };
  }

  async forceRelease(key: string, options?: OperationOptions): Promise<boolean> {
    this.#throwIfClosed();
    const removed = await this.#runner.run(SCRIPTS.forceRelease, this.#keysOf(key).list, [], {
      signal: options?.signal,
    });
    return removed === 1;
  }

  /** Holders of every lock whose key starts with `prefix` (a `SCAN` of each master). */
  async list(prefix: string, options?: OperationOptions): Promise<LockInfo[]> {
    this.#throwIfClosed();
    const client = this.#options.client;
    const nodes: RedisClient[] = client.isCluster ? (client as Cluster).nodes('master') : [client];
    const pattern = scanPattern(this.#options.prefix, prefix);
    const names = new Set<string>();
    try {
      for (const node of nodes) {
        let cursor = '0';
        do {
          options?.signal?.throwIfAborted();
          const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
          cursor = next;
          for (const redisKey of found) {
            const name = lockNameOf(this.#options.prefix, redisKey);
            if (name !== undefined && name.startsWith(prefix)) names.add(name);
          }
        } while (cursor !== '0');
      }
    } catch (error) {
      if (options?.signal?.aborted) throw options.signal.reason;
      throw new BackendError('redis list failed', { cause: error, retryable: true });
    }
    const infos = await Promise.all([...names].sort().map((name) => this.inspect(name, options)));
    return infos.filter((info): info is LockInfo => info !== null);
  }

  /** End queued acquires (they leave their queues), close blocking connections, and quit the
   * client if the backend built it. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const reason = new LockClosedError('redis backend');
    const waits = [...this.#queue.waits];
    for (const [wait] of waits) wait.abort(reason);
    await Promise.allSettled(waits.map(([, waiting]) => waiting));
    this.#pool.close();
    if (this.#options.ownsClient) {
      const client = this.#options.client;
      await client.quit().catch(() => client.disconnect());
    }
  }

  /** The Redis keys of `key`, built once per lock while it is in use. */
  #keysOf(key: string): CachedKeys {
    let cached = this.#keyCache.get(key);
    if (!cached) {
      const keys = lockKeys(this.#options.prefix, key);
      cached = { keys, list: [keys.lock, keys.fence, keys.queue, keys.waiters] };
      if (this.#keyCache.size >= MAX_CACHED_KEYS) this.#keyCache.clear();
      this.#keyCache.set(key, cached);
    }
    return cached;
  }

  #throwIfClosed(): void {
    if (this.#closed) throw new LockClosedError('redis backend');
  }
}
