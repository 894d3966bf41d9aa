/**
 * The Redis lock backend: each operation is one Lua script, so one round trip; waiters queue in
 * Redis and the release script hands the lock to the longest live waiters (see queued-acquire.ts).
 * Exclusive holdings (a mutex, a writer) and shared ones (readers, semaphore permits) are one
 * lock per key, under the rules of `core/kinds.ts` (see `scripts/common.lua.ts`). The client
 * library is behind `RedisConnection` (`./ioredis/` and `./node-redis/`).
 */
import type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  HolderInfo,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  QueuedAcquireOptions,
  ReleaseOutcome,
} from '../../core/backend.js';
import type { Cluster, Redis } from 'ioredis';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockClosedError,
} from '../../core/errors.js';
import { luaScript } from './connection.js';
import { createRedisConnection, type RedisClientConnection } from './create-connection.js';
import type { NodeRedisClient } from './node-redis/client.js';
import { lockKeys, lockNameOf, scanPattern, type LockKeys } from './keys.js';
import { contractLimit, limitMismatch, scriptLimit } from './limits.js';
import { resolveOptions, type RedisBackendOptions, type ResolvedRedisOptions } from './options.js';
import { acquireInQueue, type Granted, type QueueContext } from './queued-acquire.js';
import { ENQUEUE_SHARED_LUA } from './scripts/enqueue-shared.lua.js';
import { ENQUEUE_LUA } from './scripts/enqueue.lua.js';
import { EXTEND_LUA } from './scripts/extend.lua.js';
import { FORCE_RELEASE_LUA } from './scripts/force-release.lua.js';
import { INSPECT_LUA } from './scripts/inspect.lua.js';
import { LEAVE_LUA } from './scripts/leave.lua.js';
import { POLL_LUA } from './scripts/poll.lua.js';
import { RELEASE_LUA } from './scripts/release.lua.js';
import { TRY_ACQUIRE_SHARED_LUA } from './scripts/try-acquire-shared.lua.js';
import { TRY_ACQUIRE_LUA } from './scripts/try-acquire.lua.js';

const SCRIPTS = Object.freeze({
  tryAcquire: luaScript('tryAcquire', TRY_ACQUIRE_LUA),
  tryAcquireShared: luaScript('tryAcquire', TRY_ACQUIRE_SHARED_LUA),
  enqueue: luaScript('acquire', ENQUEUE_LUA),
  enqueueShared: luaScript('acquire', ENQUEUE_SHARED_LUA),
  poll: luaScript('acquire', POLL_LUA),
  leave: luaScript('acquire', LEAVE_LUA),
  extend: luaScript('extend', EXTEND_LUA),
  release: luaScript('release', RELEASE_LUA),
  inspect: luaScript('inspect', INSPECT_LUA),
  forceRelease: luaScript('forceRelease', FORCE_RELEASE_LUA),
});

/** A lock's keys, and the same as the `KEYS` list every script takes (shared, never mutated). */
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
    shared: true,
  });

  readonly #options: ResolvedRedisOptions;
  readonly #connection: RedisClientConnection;
  readonly #queue: QueueContext;
  readonly #keyCache = new Map<string, CachedKeys>();
  #closed: Promise<void> | undefined;

  constructor(options: RedisBackendOptions) {
    this.#options = resolveOptions(options);
    this.#connection = createRedisConnection({
      client: options.client,
      url: options.url,
      clientLibrary: options.clientLibrary,
      redisOptions: options.redisOptions,
      nodeRedisOptions: options.nodeRedisOptions,
      commandTimeoutMs: this.#options.commandTimeoutMs,
      maxBlockingConnections: this.#options.maxBlockingConnections,
    });
    if (this.#options.waitForReplicas && !this.#connection.waitForReplicas) {
      void this.#connection.close();
      throw new InvalidArgumentError(
        'waitForReplicas',
        'is not available on a Redis Cluster client (its calls run on many connections)',
      );
    }
    this.#queue = {
      connection: this.#connection,
      scripts: SCRIPTS,
      queueEntryTtlMs: this.#options.queueEntryTtlMs,
      pollIntervalMs: this.#options.pollIntervalMs,
      contended: new Set(),
      waits: new Map(),
      closing: () => this.#closed !== undefined,
    };
  }

  /** The client in use (yours, or the one built from `url`): ioredis or node-redis. */
  get client(): Redis | Cluster | NodeRedisClient {
    return this.#connection.client;
  }

  async tryAcquire(request: AcquireRequest, options?: OperationOptions): Promise<AcquireResult> {
    this.#throwIfClosed();
    const shared = request.mode === 'shared';
    const ttlMs = Math.ceil(request.ttlMs);
    const reply = (await this.#connection.run(
      shared ? SCRIPTS.tryAcquireShared : SCRIPTS.tryAcquire,
      this.#keysOf(request.key).list,
      shared ? [request.token, ttlMs, scriptLimit(request.limit)] : [request.token, ttlMs],
      {
        signal: options?.signal,
        // Nobody will learn of a late success: give it back rather than block the key for a TTL.
        onLate: (late) => {
          if ((late as [number])[0] === 1) void this.release(request).catch(() => undefined);
        },
      },
    )) as [number, string | number];
    if (reply[0] === 1) {
      if (this.#options.waitForReplicas) await this.#replicated(request, 'tryAcquire');
      return { acquired: true, fence: BigInt(reply[1]) };
    }
    if (reply[0] === -2) throw limitMismatch(request, reply[1]);
    const remaining = Number(reply[1]);
    return remaining >= 0 ? { acquired: false, retryAfterMs: remaining } : { acquired: false };
  }

  acquire(request: AcquireRequest, options: QueuedAcquireOptions): Promise<Granted> {
    // Not an async function: one promise fewer between the reply and the caller.
    try {
      this.#throwIfClosed();
      const { keys, list } = this.#keysOf(request.key);
      const granted = acquireInQueue(this.#queue, keys, list, request, options);
      if (!this.#options.waitForReplicas) return granted;
      return granted.then(async (grant) => {
        // The grant may have been written on another connection (a blocking one, or the releaser's
        // handoff): renewing it here makes it a write of this connection, which WAIT covers.
        const renewed = await this.#connection
          .run(SCRIPTS.extend, list, [request.token, Math.ceil(request.ttlMs)])
          .catch(async (error: unknown) => {
            await this.release(request).catch(() => undefined);
            throw error;
          });
        if (renewed !== 1) return grant; // Already lost: the core finds out at the first extend.
        await this.#replicated(request, 'acquire');
        return grant;
      });
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  async extend(lease: LeaseRef, ttlMs: number, options?: OperationOptions): Promise<ExtendResult> {
    this.#throwIfClosed();
    const code = await this.#connection.run(
      SCRIPTS.extend,
      this.#keysOf(lease.key).list,
      [lease.token, Math.ceil(ttlMs)],
      { signal: options?.signal },
    );
    if (code === 1) {
      if (this.#options.waitForReplicas) await this.#replicated(lease, 'extend');
      return { extended: true };
    }
    return { extended: false, reason: code === 0 ? 'expired' : 'not-owner' };
  }

  async release(lease: LeaseRef, options?: OperationOptions): Promise<ReleaseOutcome> {
    this.#throwIfClosed();
    const code = await this.#connection.run(
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
    const reply = (await this.#connection.run(SCRIPTS.inspect, this.#keysOf(key).list, [], {
      signal: options?.signal,
    })) as [string, number, number, ...(string | number)[]] | null;
    if (!reply) return null;
    const [mode, limit, waiters] = reply;
    const holders: HolderInfo[] = [];
    for (let i = 3; i + 2 < reply.length; i += 3) {
      const remainingMs = Number(reply[i + 2]);
      holders.push({
        token: String(reply[i]),
        fence: BigInt(reply[i + 1]!),
        remainingMs: remainingMs >= 0 ? remainingMs : null,
        mode: mode === 'shared' ? 'shared' : 'exclusive',
      });
    }
    holders.sort((a, b) => (a.fence < b.fence ? -1 : a.fence > b.fence ? 1 : 0));
    const newest = holders[holders.length - 1];
    if (!newest) return null;
    return {
      key,
      token: newest.token,
      fence: newest.fence,
      remainingMs: newest.remainingMs,
      waiters,
      mode: newest.mode,
      holders,
      ...(mode === 'shared' ? { limit: contractLimit(limit) } : {}),
    };
  }

  async forceRelease(key: string, options?: OperationOptions): Promise<boolean> {
    this.#throwIfClosed();
    const removed = await this.#connection.run(SCRIPTS.forceRelease, this.#keysOf(key).list, [], {
      signal: options?.signal,
    });
    return removed === 1;
  }

  /** Holders of every lock whose key starts with `prefix` (a `SCAN` of each master). */
  async list(prefix: string, options?: OperationOptions): Promise<LockInfo[]> {
    this.#throwIfClosed();
    const found = await this.#connection.scan(
      scanPattern(this.#options.prefix, prefix),
      options?.signal,
    );
    const names = new Set<string>();
    for (const redisKey of found) {
      const name = lockNameOf(this.#options.prefix, redisKey);
      if (name !== undefined && name.startsWith(prefix)) names.add(name);
    }
    const infos = await Promise.all([...names].sort().map((name) => this.inspect(name, options)));
    return infos.filter((info): info is LockInfo => info !== null);
  }

  /**
   * End queued acquires (they leave their queues), close blocking connections, and quit the
   * client if the backend built it. Idempotent. Not needed for the process to exit: the
   * backend's own connections are unref'd while nothing is in flight or waiting (a client you
   * passed in is yours to quit).
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const reason = new LockClosedError('redis backend');
    const waits = [...this.#queue.waits];
    for (const [wait] of waits) wait.abort(reason);
    await Promise.allSettled(waits.map(([, waiting]) => waiting));
    await this.#connection.close();
  }

  /**
   * `WAIT` for `waitForReplicas.replicas` acknowledgements of this connection's writes so far (the
   * grant or renewal just made). Too few fail the attempt, retryably: a grant is given back first
   * (an extend just does not count as renewed).
   */
  async #replicated(
    lease: LeaseRef,
    operation: 'tryAcquire' | 'acquire' | 'extend',
  ): Promise<void> {
    const { replicas, timeoutMs } = this.#options.waitForReplicas!;
    let acknowledged: number;
    try {
      acknowledged = await this.#connection.waitForReplicas!(replicas, timeoutMs);
    } catch (error) {
      if (operation !== 'extend') await this.release(lease).catch(() => undefined);
      throw error;
    }
    if (acknowledged >= replicas) return;
    if (operation !== 'extend') await this.release(lease).catch(() => undefined);
    throw new BackendUnavailableError(
      `redis ${operation} failed: ${acknowledged} of ${replicas} replicas acknowledged it within ${timeoutMs} ms (waitForReplicas)`,
    );
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
