/**
 * Options of the Redis backend: defaults in one frozen object, validated eagerly. How to reach
 * Redis (`client`, `url`, `redisOptions`) is the client layer's business (`./ioredis/`).
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '../../core/errors.js';
import type { RedisClientLibrary } from './create-connection.js';
import type { NodeRedisClient, NodeRedisClientOptions } from './node-redis/client.js';
import type { NodeRedisCluster } from './node-redis/cluster-client.js';

/** Options of {@link redisBackend}: pass exactly one of `client` or `url`. */
export interface RedisBackendOptions {
  /**
   * Your client: an ioredis `Redis` or `Cluster`, or a node-redis (`redis` v5) client from
   * `createClient()` or cluster from `createCluster()` (whose waiters poll), connected by you
   * (told apart by shape). It stays open when the backend closes. The backend listens to its `error` events while open (to give a failure its root
   * cause), which also keeps the library from printing them as unhandled (ioredis) or throwing
   * them (node-redis).
   */
  readonly client?: Redis | Cluster | NodeRedisClient | NodeRedisCluster;
  /**
   * A URL with a host; the backend builds its own client (failing fast while Redis is unreachable,
   * and within `connectTimeout` for an address that never answers: see `REDIS_CLIENT_DEFAULTS`)
   * and quits it on `close()`. Forms: `redis://[user:password@]host:port[/db]` and `rediss://…`
   * (TLS); `redis+cluster://[user:password@]host:port,host:port…` (a Redis Cluster through these
   * startup nodes; `rediss+cluster://` with TLS); `redis+sentinel://[user:password@]host:port,
   * host:port…/mastername[?db=n]` (the master these Sentinels name, followed across failovers;
   * the credentials are the master's, `redisOptions.sentinelPassword` the Sentinels'). The
   * cluster and Sentinel forms need ioredis.
   */
  readonly url?: string;
  /**
   * The library of the client built from `url`: `'ioredis'`, or `'node-redis'` (the `redis`
   * package, an optional peer). Ignored with `client` (its own library is used).
   * @default 'ioredis'
   */
  readonly clientLibrary?: RedisClientLibrary;
  /** Extra ioredis options for the client built from `url`. @default none */
  readonly redisOptions?: RedisOptions;
  /**
   * Extra node-redis `createClient` options for the client built from `url` with
   * `clientLibrary: 'node-redis'`. @default none
   */
  readonly nodeRedisOptions?: NodeRedisClientOptions;
  /**
   * Prepended to every Redis key. Keys look like `<prefix>{<lock key>}` plus suffixes, and
   * `<prefix>fences{<tag>}` for the fence counters. It may not contain `{` or `}`: a hash tag in
   * the prefix would put every lock in one Redis Cluster slot.
   * @default 'distlock:'
   */
  readonly prefix?: string;
  /**
   * How long one operation may take before it fails with a retryable `BackendUnavailableError`
   * (a hung or partitioned server gives no error by itself).
   * @default 2_000
   */
  readonly commandTimeoutMs?: number;
  /**
   * How long a queued waiter's entry lives without a heartbeat. Waiters heartbeat every third of
   * it; a waiter that died stops doing so and is skipped after at most this long.
   * @default 3_000
   */
  readonly queueEntryTtlMs?: number;
  /**
   * Polling period (jittered) of a waiter that has no blocking connection (beyond
   * `maxBlockingConnections`) and so is not woken by the store.
   * @default 100
   */
  readonly pollIntervalMs?: number;
  /**
   * Most connections this backend opens for `BLPOP` (one per waiter queued at the same time,
   * reused once idle). Waiters beyond it poll instead; 0 makes every waiter poll.
   * @default 16
   */
  readonly maxBlockingConnections?: number;
  /**
   * Replica acknowledgement of every grant and renewal, for a master that may fail over (Redis
   * Sentinel): after each acquire and extend the backend sends `WAIT replicas timeoutMs`, and
   * fewer acknowledgements than `replicas` make the attempt fail (retryable): an acquire gives
   * back what it took and fails, an extend does not renew. Without it, a grant the master
   * acknowledged but had not yet sent to its replicas is lost if that master dies, and a replica
   * promoted in its place may grant the same lock to another client while the first still holds
   * it (see the README's guarantees). Not available on a Redis Cluster client (calls run on many
   * connections).
   * @default undefined (no WAIT)
   */
  readonly waitForReplicas?: WaitForReplicasOptions;
}

/** See {@link RedisBackendOptions.waitForReplicas}. */
export interface WaitForReplicasOptions {
  /** How many replicas must acknowledge each grant and renewal (at least 1). */
  readonly replicas: number;
  /**
   * How long `WAIT` may wait for them, in ms. Counts against the acquire's wait and the lease's
   * renewal margin, so keep it well below the TTL.
   * @default 500
   */
  readonly timeoutMs?: number;
}

/** Every default of {@link RedisBackendOptions}. */
export const REDIS_DEFAULTS = Object.freeze({
  prefix: 'distlock:',
  commandTimeoutMs: 2_000,
  queueEntryTtlMs: 3_000,
  pollIntervalMs: 100,
  maxBlockingConnections: 16,
  waitForReplicasTimeoutMs: 500,
});

/** Validated options of the lock logic: every field present. */
export interface ResolvedRedisOptions {
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  readonly queueEntryTtlMs: number;
  readonly pollIntervalMs: number;
  readonly maxBlockingConnections: number;
  readonly waitForReplicas: { readonly replicas: number; readonly timeoutMs: number } | undefined;
}

function positiveInteger(option: string, value: unknown, max = 2_147_483_647): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(option, `must be an integer in [1, ${max}]`);
  }
  return value;
}

export function resolveOptions(options: RedisBackendOptions): ResolvedRedisOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object with `client` or `url`');
  }
  const prefix = options.prefix ?? REDIS_DEFAULTS.prefix;
  if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
  if (/[{}]/.test(prefix)) {
    throw new InvalidArgumentError(
      'prefix',
      'must not contain "{" or "}" (Redis Cluster hash tags)',
    );
  }
  const commandTimeoutMs = positiveInteger(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? REDIS_DEFAULTS.commandTimeoutMs,
  );
  const queueEntryTtlMs = positiveInteger(
    'queueEntryTtlMs',
    options.queueEntryTtlMs ?? REDIS_DEFAULTS.queueEntryTtlMs,
  );
  if (queueEntryTtlMs < 30) throw new InvalidArgumentError('queueEntryTtlMs', 'must be >= 30');
  const pollIntervalMs = positiveInteger(
    'pollIntervalMs',
    options.pollIntervalMs ?? REDIS_DEFAULTS.pollIntervalMs,
  );
  const maxBlockingConnections =
    options.maxBlockingConnections ?? REDIS_DEFAULTS.maxBlockingConnections;
  if (
    typeof maxBlockingConnections !== 'number' ||
    !Number.isInteger(maxBlockingConnections) ||
    maxBlockingConnections < 0
  ) {
    throw new InvalidArgumentError('maxBlockingConnections', 'must be an integer >= 0');
  }
  const wait = options.waitForReplicas;
  let waitForReplicas: ResolvedRedisOptions['waitForReplicas'];
  if (wait !== undefined) {
    if (typeof wait !== 'object' || wait === null) {
      throw new InvalidArgumentError(
        'waitForReplicas',
        'must be an object { replicas, timeoutMs? }',
      );
    }
    waitForReplicas = {
      replicas: positiveInteger('waitForReplicas.replicas', wait.replicas, 1_000),
      timeoutMs: positiveInteger(
        'waitForReplicas.timeoutMs',
        wait.timeoutMs ?? REDIS_DEFAULTS.waitForReplicasTimeoutMs,
      ),
    };
  }
  return {
    prefix,
    commandTimeoutMs,
    queueEntryTtlMs,
    pollIntervalMs,
    maxBlockingConnections,
    waitForReplicas,
  };
}
