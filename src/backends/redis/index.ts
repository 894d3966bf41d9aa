/**
 * `distlock/redis`: locks in Redis (standalone or Cluster) over ioredis or node-redis (`redis`). One Lua script per
 * operation (one round trip), a fence from the counter of the lock's Cluster slot with every
 * grant (bounded state: see `keys.ts`), a FIFO queue of waiters with the lock handed over inside
 * the release script, read-write locks and semaphores on the same keys (`locks.readWrite(key)`,
 * `locks.semaphore(key, { limit })`: shared holders in a sorted set by expiry, a waiting writer
 * keeps later readers out), and typed retryable errors whose cause chain ends at the root cause
 * when Redis is unreachable.
 *
 * A backend built from a `url` owns its connections: `close()` quits them, and while nothing is in
 * flight or waiting they do not keep the process alive (a script that forgets `close()` exits).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createLocks } from 'distlock';
 * import { redisBackend } from 'distlock/redis';
 *
 * const locks = createLocks({ backend: redisBackend({ client: new Redis() }), ttlMs: 10_000 });
 * await locks.withLock('order:42', async (lease) => {
 *   await charge({ fence: lease.fence, signal: lease.signal });
 * });
 * await locks.semaphore('exports', { limit: 3 }).withPermit(() => runExport());
 * // Or let the backend own its connection (closed by `locks.close()`):
 * const own = redisBackend({ url: 'redis://127.0.0.1:6379' });
 * ```
 */
import { RedisBackend } from './backend.js';
import type { RedisBackendOptions } from './options.js';

export { RedisBackend } from './backend.js';
export { REDIS_CLIENT_DEFAULTS } from './ioredis/connection.js';
export { NODE_REDIS_CLIENT_DEFAULTS } from './node-redis/connection.js';
export type { NodeRedisClient, NodeRedisClientOptions } from './node-redis/client.js';
export type { NodeRedisCluster } from './node-redis/cluster-client.js';
export {
  createRedisConnection,
  type RedisClientConnection,
  type RedisClientLibrary,
  type RedisConnectionOptions,
} from './create-connection.js';
export type {
  BlockingConnection,
  LuaScript,
  PopOutcome,
  RedisConnection,
  RunOptions,
} from './connection.js';
export { REDIS_DEFAULTS, type RedisBackendOptions } from './options.js';

/**
 * A lock backend over Redis. Pass your `client` (ioredis `Redis` or `Cluster`, or a connected
 * node-redis client or cluster; it stays open) or a `url` (the backend builds its own client, with ioredis
 * unless `clientLibrary: 'node-redis'`, and quits it on `close()`).
 * @throws InvalidArgumentError for a bad option, e.g. a malformed `url`.
 */
export function redisBackend(options: RedisBackendOptions): RedisBackend {
  return new RedisBackend(options);
}
