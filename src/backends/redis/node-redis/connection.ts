/**
 * The Redis client layer over node-redis (the `redis` package, v5): the user's client, or one
 * built from a URL with `createClient`, behind the client-agnostic {@link RedisConnection}, as
 * `../ioredis/` does for ioredis.
 */
import { withTimeout } from '../../../core/race.js';
import { BackendUnavailableError, InvalidArgumentError } from '../../../core/errors.js';
import { secretsOf } from '../../../core/redact.js';
import type { BlockingConnection, LuaScript, RedisConnection, RunOptions } from '../connection.js';
import { NodeRedisBlockingPool } from './blocking-pool.js';
import { clusterAsClient, scanCluster, type NodeRedisCluster } from './cluster-client.js';
import {
  isNodeRedisClient,
  isNodeRedisCluster,
  loadCreateClient,
  type NodeRedisClient,
  type NodeRedisClientOptions,
} from './client.js';
import { NodeRedisConnectionErrors, toLockError } from './errors.js';
import { OwnedClients } from './owned-clients.js';
import { NodeRedisScriptRunner } from './script-runner.js';

/**
 * node-redis options of a client built from a URL (see `REDIS_CLIENT_DEFAULTS` for ioredis: the
 * same choices). `connectTimeout` (1.5 s) is below the default `commandTimeoutMs` (2 s), so that a
 * connect to an address that never answers fails, and says why, before the calls waiting on it
 * time out; reconnects back off up to 1 s.
 */
export const NODE_REDIS_CLIENT_DEFAULTS = Object.freeze({
  connectTimeout: 1_500,
  reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 1_000),
});

/** How to reach Redis: the user's node-redis client, or a URL to build one from. */
export interface NodeRedisConnectionOptions {
  readonly client?: NodeRedisClient | undefined;
  readonly url?: string | undefined;
  /** Extra `createClient` options for the client built from `url`. */
  readonly clientOptions?: NodeRedisClientOptions | undefined;
  readonly commandTimeoutMs: number;
  readonly maxBlockingConnections: number;
}

/** Every password the client may send, to scrub from errors (as written and decoded). */
function secretsOfClient(client: NodeRedisClient, url: string | undefined): string[] {
  const options = client.options as
    | (NodeRedisClientOptions & { rootNodes?: readonly NodeRedisClientOptions[] | undefined })
    | undefined;
  // A cluster's (see `cluster-client.ts`): its defaults, and each root node's URL and password.
  const all = [options, ...(options?.rootNodes ?? [])];
  const found = [url, ...all.map((each) => each?.url)].flatMap((text) =>
    typeof text === 'string' ? secretsOf(text) : [],
  );
  for (const each of all) {
    if (typeof each?.password === 'string' && each.password !== '') found.push(each.password);
  }
  return [...new Set(found)];
}

/**
 * {@link RedisConnection} over a node-redis client: the user's (connected by them, left open on
 * `close()`) or one built from a URL (owned: connected here, closed on `close()`, its sockets
 * unref'd while idle).
 */
export class NodeRedisConnection implements RedisConnection {
  /** The client in use (yours, or the one built from the URL; a cluster behind the client shape). */
  readonly client: NodeRedisClient;
  readonly #owned: boolean;
  readonly #errors: NodeRedisConnectionErrors;
  readonly #refs = new OwnedClients();
  readonly #runner: NodeRedisScriptRunner;
  readonly #pool: NodeRedisBlockingPool;
  readonly #commandTimeoutMs: number;
  readonly #cluster: NodeRedisCluster | undefined;
  /** What the runner drives: the client, or the cluster's adapter. */
  readonly #driven: NodeRedisClient;

  /** @throws InvalidArgumentError for a bad `client`, or `redis` missing for a `url`. */
  constructor(options: NodeRedisConnectionOptions) {
    if ((options.client === undefined) === (options.url === undefined)) {
      throw new InvalidArgumentError('client', 'pass exactly one of `client` or `url`');
    }
    const cluster = isNodeRedisCluster(options.client)
      ? (options.client as unknown as NodeRedisCluster)
      : undefined;
    if (options.client !== undefined && !cluster && !isNodeRedisClient(options.client)) {
      throw new InvalidArgumentError('client', 'must be a node-redis client (createClient())');
    }
    this.#cluster = cluster;
    let client = cluster ? clusterAsClient(cluster) : options.client;
    if (client === undefined) {
      const createClient = loadCreateClient();
      const extra = options.clientOptions ?? {};
      client = createClient({
        ...extra,
        url: options.url,
        socket: { ...NODE_REDIS_CLIENT_DEFAULTS, ...extra.socket },
      });
    }
    // The user's cluster itself, not its adapter.
    this.client = cluster ? (cluster as unknown as NodeRedisClient) : client;
    this.#driven = client;
    this.#owned = options.client === undefined;
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#errors = new NodeRedisConnectionErrors(secretsOfClient(client, options.url));
    this.#errors.follow(client);
    this.#runner = new NodeRedisScriptRunner(
      client,
      options.commandTimeoutMs,
      this.#errors,
      this.#refs,
    );
    this.#pool = new NodeRedisBlockingPool(
      client,
      this.#runner,
      // A cluster's waiters poll (see `cluster-client.ts`).
      cluster ? 0 : options.maxBlockingConnections,
      this.#refs,
    );
    if (cluster) this.waitForReplicas = undefined;
    if (this.#owned) {
      this.#refs.own(client);
      // Failures are reported through `error` events (followed above) and the calls.
      client.connect().catch(() => undefined);
    }
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
    if (this.#cluster) {
      try {
        return await scanCluster(this.#cluster, pattern, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw toLockError(error, 'list', this.#errors);
      }
    }
    const found: string[] = [];
    try {
      let cursor = '0';
      do {
        signal?.throwIfAborted();
        if (!this.client.isReady) throw new Error('not connected');
        const reply = (await this.client.sendCommand([
          'SCAN',
          cursor,
          'MATCH',
          pattern,
          'COUNT',
          '500',
        ])) as [string, string[]];
        cursor = String(reply[0]);
        found.push(...reply[1]);
      } while (cursor !== '0');
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw toLockError(error, 'list', this.#errors);
    }
    return found;
  }

  /** `WAIT` on the client's connection (see `RedisConnection`); absent on a cluster. */
  readonly waitForReplicas: ((replicas: number, timeoutMs: number) => Promise<number>) | undefined =
    (replicas, timeoutMs) => this.#wait(replicas, timeoutMs);

  async #wait(replicas: number, timeoutMs: number): Promise<number> {
    const client = this.client;
    if (!client.isReady) {
      throw new BackendUnavailableError('redis wait failed: not connected', {
        cause: this.#errors.connectionError(),
      });
    }
    try {
      // WAIT answers within its own timeout; the command timeout covers the round trip.
      return Number(
        await withTimeout(
          client.sendCommand(['WAIT', String(replicas), String(timeoutMs)]),
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
    this.#errors.unfollow(this.#driven);
    if (!this.#owned) return;
    const client = this.client;
    // Our listener is gone: an `error` event without one would be thrown.
    client.on('error', () => undefined);
    if (!client.isOpen) return;
    // A graceful close would wait for a connect that may never come.
    if (!client.isReady) return client.destroy();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#commandTimeoutMs);
    });
    try {
      await Promise.race([client.close(), late]);
    } catch {
      // Destroyed anyway below.
    } finally {
      clearTimeout(timer);
      if (client.isOpen) client.destroy();
    }
  }
}
