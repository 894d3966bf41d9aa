/**
 * The Redis client layer over ioredis: the client (the user's `Redis` or `Cluster`, or one built
 * from a URL), its script runner, its pool of blocking connections, key enumeration, error
 * mapping and process keep-alive, behind the client-agnostic {@link RedisConnection}.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { withTimeout } from '../../../core/race.js';
import { BackendUnavailableError, InvalidArgumentError } from '../../../core/errors.js';
import { secretsOf } from '../../../core/redact.js';
import type { BlockingConnection, LuaScript, RedisConnection, RunOptions } from '../connection.js';
import { BlockingPool } from './blocking-pool.js';
import { ConnectionErrors, toLockError } from './errors.js';
import { parseRedisUrl } from './deployment-url.js';
import { ioredis } from './library.js';
import { ScriptRunner, type RedisClient } from './script-runner.js';
import { SocketRefs } from './socket-refs.js';
import { Subscriber } from './subscriber.js';

/**
 * ioredis options of a client built from a URL. A lock operation must not wait in a queue for a
 * reconnect (its lease's clock keeps running) nor be resent after one (its outcome would be
 * unknown): a command in flight when the connection drops fails at once, commands sent while
 * reconnecting fail at once (see `ScriptRunner`), and only a connect in progress is waited for.
 * `connectTimeout` (1.5 s) bounds that wait: an address that never answers (a black hole, a
 * firewall that drops packets) fails the calls waiting for it within 1.5 s, with `connect
 * ETIMEDOUT` as their root cause. It is below the default `commandTimeoutMs` (2 s), so that the
 * connect fails, and says why, before the calls waiting on it time out.
 */
export const REDIS_CLIENT_DEFAULTS = Object.freeze({
  maxRetriesPerRequest: 0,
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 1_500,
  retryStrategy: (attempt: number) => Math.min(50 * attempt, 1_000),
} satisfies RedisOptions);

/** How to reach Redis: the user's client, or a URL (and options) to build one from. */
export interface IoredisConnectionOptions {
  readonly client?: Redis | Cluster | undefined;
  readonly url?: string | undefined;
  readonly redisOptions?: RedisOptions | undefined;
  /** Bound of every call. */
  readonly commandTimeoutMs: number;
  /** Most blocking connections at once. */
  readonly maxBlockingConnections: number;
}

function isRedisClient(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RedisClient).evalsha === 'function' &&
    typeof (value as RedisClient).duplicate === 'function'
  );
}

/**
 * The client a URL asks for (see `deployment-url.ts`): a `Redis` for one server or a Sentinel
 * master, a `Cluster` for a cluster, with the layer's defaults under the user's `redisOptions`.
 */
function clientFor(url: unknown, redisOptions: RedisOptions | undefined): RedisClient {
  const deployment = parseRedisUrl(url);
  const { Cluster, Redis } = ioredis();
  if (deployment.kind === 'server') {
    return new Redis(deployment.url, { ...REDIS_CLIENT_DEFAULTS, ...redisOptions });
  }
  const credentials = {
    ...(deployment.username === undefined ? {} : { username: deployment.username }),
    ...(deployment.password === undefined ? {} : { password: deployment.password }),
    ...(deployment.tls ? { tls: {} } : {}),
  };
  if (deployment.kind === 'cluster') {
    return new Cluster([...deployment.endpoints], {
      // Waits only for the slots to be known (the first connect); calls fail fast after that.
      enableOfflineQueue: true,
      clusterRetryStrategy: REDIS_CLIENT_DEFAULTS.retryStrategy,
      redisOptions: { ...REDIS_CLIENT_DEFAULTS, ...credentials, ...redisOptions },
    });
  }
  return new Redis({
    ...REDIS_CLIENT_DEFAULTS,
    ...credentials,
    sentinels: [...deployment.endpoints],
    name: deployment.name,
    ...(deployment.db === undefined ? {} : { db: deployment.db }),
    // Ask the Sentinels again on every reconnect: after a failover the master has moved.
    ...redisOptions,
  });
}

/** Every password the client may send, to scrub from errors (as written and decoded). */
function secretsOfClient(client: RedisClient, url: string | undefined): string[] {
  const options: RedisOptions | undefined = client.isCluster
    ? (client as Cluster).options.redisOptions
    : (client as Redis).options;
  const found = url === undefined ? [] : secretsOf(url);
  for (const password of [options?.password, options?.sentinelPassword]) {
    if (typeof password === 'string' && password !== '') found.push(password);
  }
  return [...new Set(found)];
}

/**
 * {@link RedisConnection} over an ioredis `Redis` or `Cluster`: the user's client (left open on
 * `close()`, whose `error` events it listens to while open) or one built from a URL (owned: quit on
 * `close()`, its sockets unref'd while idle).
 */
export class IoredisConnection implements RedisConnection {
  /** The client in use (yours, or the one built from the URL). */
  readonly client: RedisClient;
  readonly #owned: boolean;
  readonly #errors: ConnectionErrors;
  readonly #refs = new SocketRefs();
  readonly #runner: ScriptRunner;
  readonly #pool: BlockingPool;
  readonly #commandTimeoutMs: number;
  #subscriber: Subscriber | undefined;

  /** @throws InvalidArgumentError for a bad `client` or `url`. */
  constructor(options: IoredisConnectionOptions) {
    if ((options.client === undefined) === (options.url === undefined)) {
      throw new InvalidArgumentError('client', 'pass exactly one of `client` or `url`');
    }
    if (options.client !== undefined && !isRedisClient(options.client)) {
      throw new InvalidArgumentError(
        'client',
        'must be an ioredis Redis or Cluster, or a node-redis client',
      );
    }
    const url = options.url;
    const client = options.client ?? clientFor(url, options.redisOptions);
    this.client = client;
    this.#owned = options.client === undefined;
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#errors = new ConnectionErrors(secretsOfClient(client, url));
    // Before the first connect attempt (which starts on a later tick): its error is the root
    // cause of the first calls' failures.
    this.#errors.follow(client);
    // A cluster's many connections are not followed: it keeps the process alive until closed.
    if (this.#owned && !client.isCluster) this.#refs.own(client as Redis);
    this.#runner = new ScriptRunner(client, options.commandTimeoutMs, this.#errors, this.#refs);
    this.#pool = new BlockingPool(client, this.#runner, options.maxBlockingConnections, this.#refs);
    // A Cluster runs calls on many connections: WAIT on one of them would say nothing.
    if (client.isCluster) this.waitForReplicas = undefined;
  }

  run(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    options?: RunOptions,
  ): Promise<unknown> {
    return this.#runner.run(script, keys, args, options);
  }

  takeBlocking(): BlockingConnection | undefined {
    return this.#pool.take();
  }

  giveBlocking(connection: BlockingConnection, healthy: boolean): void {
    this.#pool.give(connection, healthy);
  }

  async scan(pattern: string, signal?: AbortSignal): Promise<string[]> {
    const client = this.client;
    const nodes: RedisClient[] = client.isCluster ? (client as Cluster).nodes('master') : [client];
    const found: string[] = [];
    try {
      for (const node of nodes) {
        let cursor = '0';
        do {
          signal?.throwIfAborted();
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
          cursor = next;
          found.push(...keys);
        } while (cursor !== '0');
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw toLockError(error, 'list', this.#errors);
    }
    return found;
  }

  /** Pub/sub on a duplicate of a standalone client (opened on first use); a Cluster has none. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    if (this.client.isCluster) {
      return Promise.reject(new Error('subscribe is not offered on a Redis Cluster client'));
    }
    this.#subscriber ??= new Subscriber(this.client as Redis, this.#refs);
    return this.#subscriber.subscribe(channel, onMessage);
  }

  /** `WAIT` on the one connection of a standalone or Sentinel client (see `RedisConnection`). */
  readonly waitForReplicas: ((replicas: number, timeoutMs: number) => Promise<number>) | undefined =
    (replicas, timeoutMs) => this.#wait(replicas, timeoutMs);

  async #wait(replicas: number, timeoutMs: number): Promise<number> {
    const client = this.client as Redis;
    if (client.status !== 'ready') {
      throw new BackendUnavailableError(`redis wait failed: connection is ${client.status}`, {
        cause: this.#errors.connectionError(),
      });
    }
    try {
      // WAIT answers within its own timeout; the command timeout covers the round trip.
      return Number(
        await withTimeout(
          client.call('WAIT', String(replicas), String(timeoutMs)),
          timeoutMs + this.#commandTimeoutMs,
          () => 'redis wait',
        ),
      );
    } catch (error) {
      throw toLockError(error, 'wait', this.#errors);
    }
  }

  keepAlive(): () => void {
    this.#refs.busy();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#refs.idle();
    };
  }

  async close(): Promise<void> {
    this.#pool.close();
    this.#subscriber?.close();
    this.#errors.unfollow(this.client);
    if (!this.#owned) return;
    const client = this.client;
    // Our listener is gone: without one, ioredis would print a late error as unhandled.
    client.on('error', () => undefined);
    // QUIT would wait for a connect that may never come (a black-holed or refused address).
    if (client.status !== 'ready') return client.disconnect();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#commandTimeoutMs);
    });
    try {
      await Promise.race([client.quit(), late]);
    } catch {
      // Closed anyway below.
    } finally {
      clearTimeout(timer);
      client.disconnect();
    }
  }
}
