/**
 * Options of the Redis backend: defaults in one frozen object, validated eagerly, and the client
 * built from a URL when the user does not pass one.
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '../../core/errors.js';
import type { RedisClient } from './script-runner.js';

/** Options of {@link redisBackend}: pass exactly one of `client` or `url`. */
export interface RedisBackendOptions {
  /** Your ioredis `Redis` or `Cluster` client. It stays open when the backend closes. */
  readonly client?: Redis | Cluster;
  /**
   * A `redis://` or `rediss://` URL; the backend builds its own client (failing fast while
   * Redis is unreachable, see {@link REDIS_CLIENT_DEFAULTS}) and quits it on `close()`.
   */
  readonly url?: string;
  /** Extra ioredis options for the client built from `url`. @default none */
  readonly redisOptions?: RedisOptions;
  /**
   * Prepended to every Redis key. Keys look like `<prefix>{<lock key>}` plus suffixes.
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
}

/** Every default of {@link RedisBackendOptions}. */
export const REDIS_DEFAULTS = Object.freeze({
  prefix: 'distlock:',
  commandTimeoutMs: 2_000,
  queueEntryTtlMs: 3_000,
  pollIntervalMs: 100,
  maxBlockingConnections: 16,
});

/**
 * ioredis options of a client built from a URL. A lock operation must not wait in a queue for a
 * reconnect (its lease's clock keeps running) nor be resent after one (its outcome would be
 * unknown): a command in flight when the connection drops fails at once, commands sent while
 * reconnecting fail at once (see `ScriptRunner`), and only the first connect is waited for.
 */
export const REDIS_CLIENT_DEFAULTS = Object.freeze({
  maxRetriesPerRequest: 0,
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(50 * attempt, 1_000),
} satisfies RedisOptions);

/** Validated options: every field present. */
export interface ResolvedRedisOptions {
  readonly client: RedisClient;
  readonly ownsClient: boolean;
  /** The password to scrub from error messages, if known. */
  readonly secret: string | undefined;
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  readonly queueEntryTtlMs: number;
  readonly pollIntervalMs: number;
  readonly maxBlockingConnections: number;
}

function positiveInteger(option: string, value: unknown, max = 2_147_483_647): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(option, `must be an integer in [1, ${max}]`);
  }
  return value;
}

function isRedisClient(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RedisClient).evalsha === 'function' &&
    typeof (value as RedisClient).duplicate === 'function'
  );
}

function clientFromUrl(url: unknown, redisOptions: RedisOptions | undefined): Redis {
  let parsed: URL;
  try {
    if (typeof url !== 'string') throw new TypeError('not a string');
    parsed = new URL(url);
  } catch {
    // Never echo the URL: it may carry a password.
    throw new InvalidArgumentError('url', 'must be a redis:// or rediss:// URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new InvalidArgumentError('url', 'must be a redis:// or rediss:// URL');
  }
  const client = new Redis(url as string, { ...REDIS_CLIENT_DEFAULTS, ...redisOptions });
  // Failures surface as typed errors of each operation; without a listener ioredis logs them.
  client.on('error', () => undefined);
  return client;
}

function passwordOf(client: RedisClient, url: string | undefined): string | undefined {
  if (url !== undefined) {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  }
  const options = client.isCluster
    ? (client as Cluster).options.redisOptions
    : (client as Redis).options;
  return options?.password || undefined;
}

export function resolveOptions(options: RedisBackendOptions): ResolvedRedisOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object with `client` or `url`');
  }
  const prefix = options.prefix ?? REDIS_DEFAULTS.prefix;
  if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
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

  if ((options.client === undefined) === (options.url === undefined)) {
    throw new InvalidArgumentError('client', 'pass exactly one of `client` or `url`');
  }
  if (options.client !== undefined && !isRedisClient(options.client)) {
    throw new InvalidArgumentError('client', 'must be an ioredis Redis or Cluster instance');
  }
  const client = options.client ?? clientFromUrl(options.url, options.redisOptions);
  return {
    client,
    ownsClient: options.client === undefined,
    secret: passwordOf(client, options.url),
    prefix,
    commandTimeoutMs,
    queueEntryTtlMs,
    pollIntervalMs,
    maxBlockingConnections,
  };
}
