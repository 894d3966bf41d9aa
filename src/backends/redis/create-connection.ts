/**
 * Picks the client layer for what the user gave: an ioredis `Redis`/`Cluster` or a node-redis
 * client (told apart by shape), or a URL and the library to build a client with. Everything above
 * this (the lock backend, its queue) sees only {@link RedisConnection}.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '../../core/errors.js';
import type { RedisConnection } from './connection.js';
import { IoredisConnection } from './ioredis/connection.js';
import { parseRedisUrl } from './ioredis/deployment-url.js';
import {
  isNodeRedisClient,
  isNodeRedisCluster,
  type NodeRedisClient,
  type NodeRedisClientOptions,
} from './node-redis/client.js';
import type { NodeRedisCluster } from './node-redis/cluster-client.js';
import { NodeRedisConnection } from './node-redis/connection.js';

/** The client libraries a connection can be built with. */
export type RedisClientLibrary = 'ioredis' | 'node-redis';

/** Options of {@link createRedisConnection}. */
export interface RedisConnectionOptions {
  /** The user's client: ioredis `Redis` or `Cluster`, or node-redis `createClient()`. */
  readonly client?: Redis | Cluster | NodeRedisClient | NodeRedisCluster | undefined;
  /** Or a `redis://`/`rediss://` URL to build a client from (owned: closed by `close()`). */
  readonly url?: string | undefined;
  /** Library of the client built from `url`. @default 'ioredis' */
  readonly clientLibrary?: RedisClientLibrary | undefined;
  /** Extra ioredis options for a client built from `url`. @default none */
  readonly redisOptions?: RedisOptions | undefined;
  /** Extra node-redis `createClient` options for a client built from `url`. @default none */
  readonly nodeRedisOptions?: NodeRedisClientOptions | undefined;
  /** Bound of every call, in ms. */
  readonly commandTimeoutMs: number;
  /** Most blocking connections (`BLPOP`) at once. */
  readonly maxBlockingConnections: number;
}

/** A {@link RedisConnection} and the client it runs on. */
export type RedisClientConnection = RedisConnection & {
  readonly client: Redis | Cluster | NodeRedisClient;
};

/**
 * The client layer for `options`: node-redis for a node-redis client (or `clientLibrary:
 * 'node-redis'` with a URL), ioredis otherwise.
 * @throws InvalidArgumentError for a bad `client`, `url` or `clientLibrary`.
 */
export function createRedisConnection(options: RedisConnectionOptions): RedisClientConnection {
  const library = options.clientLibrary ?? 'ioredis';
  if (library !== 'ioredis' && library !== 'node-redis') {
    throw new InvalidArgumentError('clientLibrary', "must be 'ioredis' or 'node-redis'");
  }
  const common = {
    commandTimeoutMs: options.commandTimeoutMs,
    maxBlockingConnections: options.maxBlockingConnections,
  };
  if (options.client === undefined && library === 'node-redis') {
    // node-redis builds a client for one server; clusters and Sentinel URLs are ioredis's.
    if (parseRedisUrl(options.url).kind !== 'server') {
      throw new InvalidArgumentError(
        'url',
        "with clientLibrary 'node-redis' must be redis:// or rediss:// (one server)",
      );
    }
  }
  if (
    isNodeRedisClient(options.client) ||
    isNodeRedisCluster(options.client) ||
    (options.client === undefined && library === 'node-redis')
  ) {
    return new NodeRedisConnection({
      ...common,
      client: options.client as NodeRedisClient | undefined,
      url: options.url,
      clientOptions: options.nodeRedisOptions,
    });
  }
  return new IoredisConnection({
    ...common,
    client: options.client as Redis | Cluster | undefined,
    url: options.url,
    redisOptions: options.redisOptions,
  });
}
