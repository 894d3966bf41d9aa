/**
 * Connections for `BLPOP`. A blocked connection can do nothing else, so each waiter that is
 * queued at the same time needs its own; they are duplicated from the user's client on demand,
 * kept for reuse when idle, capped at `maxBlockingConnections` (waiters beyond the cap fall back
 * to jittered polling), and closed with the backend. They never reconnect or retry by themselves:
 * a broken one rejects its `BLPOP` and is thrown away.
 */
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './script-runner.js';

function duplicateForBlocking(client: RedisClient): RedisClient {
  const connection: RedisClient = client.isCluster
    ? (client as Cluster).duplicate([], {
        enableOfflineQueue: true,
        clusterRetryStrategy: () => null,
        redisOptions: {
          ...(client as Cluster).options.redisOptions,
          maxRetriesPerRequest: 0,
          autoResendUnfulfilledCommands: false,
          commandTimeout: undefined,
        },
      })
    : (client as Redis).duplicate({
        lazyConnect: false,
        enableOfflineQueue: true,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        enableAutoPipelining: false,
        // A BLPOP is meant to outlive any command timeout the user's client may set.
        commandTimeout: undefined,
        retryStrategy: () => null,
      });
  // Failures surface as rejected BLPOPs; without a listener ioredis would log every error.
  connection.on('error', () => undefined);
  return connection;
}

export class BlockingPool {
  readonly #client: RedisClient;
  readonly #max: number;
  readonly #idle: RedisClient[] = [];
  readonly #all = new Set<RedisClient>();
  #closed = false;

  constructor(client: RedisClient, max: number) {
    this.#client = client;
    this.#max = max;
  }

  /** A connection for one waiter, or undefined when the cap is reached (then poll instead). */
  take(): RedisClient | undefined {
    if (this.#closed) return undefined;
    for (let connection = this.#idle.pop(); connection; connection = this.#idle.pop()) {
      if (connection.status !== 'end' && connection.status !== 'close') return connection;
      this.#discard(connection);
    }
    if (this.#all.size >= this.#max) return undefined;
    const connection = duplicateForBlocking(this.#client);
    this.#all.add(connection);
    return connection;
  }

  /** Hand a connection back once its `BLPOP` has settled; a broken one is closed. */
  give(connection: RedisClient, healthy: boolean): void {
    if (!healthy || this.#closed) this.#discard(connection);
    else this.#idle.push(connection);
  }

  /** Close every connection, idle or blocked. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#all) connection.disconnect();
    this.#all.clear();
    this.#idle.length = 0;
  }

  #discard(connection: RedisClient): void {
    this.#all.delete(connection);
    connection.disconnect();
  }
}
