/**
 * The other contenders of the lock-kind benchmarks on Redis (B4–B6):
 * - `Redisson-like` (peer, reads and writes): the semantics of Redisson's `RReadWriteLock` in one
 *   Lua script per call (a hash with the mode and the readers; a reader gets in whenever the mode
 *   is `read`, waiting writers or not: reader preference), retried every millisecond (Redisson
 *   waits on pub/sub; a 1 ms retry only makes its writers try more often);
 * - `redis-semaphore` `Semaphore` at its defaults and tuned, and its `RedlockSemaphore` on one
 *   node (peers, permits): a sorted set of holders, acquired by retrying;
 * - `FIFO semaphore floor` (permits): the least a fair semaphore does: a set of holders, a queue,
 *   and a release that hands its permit to the next waiter and wakes it (`BLPOP`). No fences, no
 *   TTLs, no dead-waiter handling.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedlockSemaphore, Semaphore, TimeoutError } from 'redis-semaphore';
import { sleep } from './contender.js';
import type { Kind, KindsClient, KindsContender } from './kinds.js';
import { closeRedis, connectRedis } from './redis-connection.js';

/** KEYS: lock. ARGV: token, ttl, mode (`read` or `write`). Returns 1 held, 0 not. */
const RW_ACQUIRE = `
local mode = redis.call('HGET', KEYS[1], 'mode')
if mode == false or (mode == 'read' and ARGV[3] == 'read') then
  redis.call('HSET', KEYS[1], 'mode', ARGV[3])
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** KEYS: lock. ARGV: token. Drops the token's holding; the last one out deletes the lock. */
const RW_RELEASE = `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
return 1`;

type RwRedis = Redis & {
  rwAcquire(lock: string, token: string, ttlMs: number, mode: string): Promise<number>;
  rwRelease(lock: string, token: string): Promise<number>;
};

/** Redisson-like read-write lock (reader preference), retried every `retryMs`. */
export function redissonLike(
  port: number,
  options: { ttlMs: number; retryMs: number },
): KindsContender {
  return {
    name: 'Redisson-like',
    role: 'peer',
    tuned: true,
    settings: `RReadWriteLock's rule (readers join a read holding even while writers wait); retry every ${options.retryMs} ms`,
    kinds: ['read', 'write'],
    async createClient(): Promise<KindsClient<{ key: string; token: string }>> {
      const redis = (await connectRedis(port)) as RwRedis;
      redis.defineCommand('rwAcquire', { numberOfKeys: 1, lua: RW_ACQUIRE });
      redis.defineCommand('rwRelease', { numberOfKeys: 1, lua: RW_RELEASE });
      const id = randomBytes(8).toString('hex');
      let count = 0;
      return {
        async acquire(kind, key) {
          const token = `${id}:${(count += 1)}`;
          while ((await redis.rwAcquire(key, token, options.ttlMs, kind)) !== 1) {
            await sleep(options.retryMs);
          }
          return { key, token };
        },
        async release({ key, token }) {
          await redis.rwRelease(key, token);
        },
        close: () => closeRedis(redis),
      };
    },
  };
}

/** redis-semaphore's `Semaphore` (or `RedlockSemaphore` on this one node) with `limit` permits. */
export function redisSemaphorePermits(
  port: number,
  options: {
    ttlMs: number;
    limit: number;
    tuned: boolean;
    retryIntervalMs?: number;
    redlock?: boolean;
  },
): KindsContender {
  const retry =
    options.retryIntervalMs === undefined ? {} : { retryInterval: options.retryIntervalMs };
  const kind = options.redlock ? 'RedlockSemaphore' : 'Semaphore';
  return {
    name: `redis-semaphore ${kind} (${options.tuned ? 'tuned' : 'defaults'})`,
    role: 'peer',
    tuned: options.tuned,
    settings:
      `${kind}${options.redlock ? ' on 1 node' : ''}, limit ${options.limit}; ` +
      (options.retryIntervalMs === undefined
        ? 'defaults: retryInterval 10, acquireTimeout 10000'
        : `retryInterval ${options.retryIntervalMs}, acquireTimeout 10000`),
    kinds: ['permit'],
    async createClient(): Promise<KindsClient<Semaphore | RedlockSemaphore>> {
      const redis = await connectRedis(port);
      const settings = { lockTimeout: options.ttlMs, ...retry };
      return {
        async acquire(_kind: Kind, key: string) {
          const permit = options.redlock
            ? new RedlockSemaphore([redis], key, options.limit, settings)
            : new Semaphore(redis, key, options.limit, settings);
          try {
            await permit.acquire();
            return permit;
          } catch (error) {
            if (error instanceof TimeoutError) return null;
            throw error;
          }
        },
        async release(permit) {
          await permit.release();
        },
        close: () => closeRedis(redis),
      };
    },
  };
}

/** KEYS: holders, queue. ARGV: id, limit. Returns 1 held, 0 queued. */
const SEM_ACQUIRE = `
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  return 1
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 0`;

/** KEYS: holders, queue. ARGV: id. Hands the permit to the next waiter and wakes it. */
const SEM_RELEASE = `
redis.call('SREM', KEYS[1], ARGV[1])
local next = redis.call('LPOP', KEYS[2])
if next then
  redis.call('SADD', KEYS[1], next)
  redis.call('RPUSH', KEYS[1] .. ':n:' .. next, 'g')
end
return 1`;

type SemaphoreRedis = Redis & {
  semAcquire(holders: string, queue: string, id: string, limit: number): Promise<number>;
  semRelease(holders: string, queue: string, id: string): Promise<number>;
};

/** The FIFO handoff semaphore floor, with one connection and one blocking connection per client. */
export function fifoSemaphoreFloor(port: number, options: { limit: number }): KindsContender {
  return {
    name: 'FIFO semaphore floor',
    role: 'floor',
    tuned: false,
    settings:
      'SCARD < limit → SADD, else RPUSH + BLPOP own list; release hands the permit to the next waiter',
    kinds: ['permit'],
    async createClient(): Promise<KindsClient<string>> {
      const redis = (await connectRedis(port)) as SemaphoreRedis;
      const blocking = await connectRedis(port);
      redis.defineCommand('semAcquire', { numberOfKeys: 2, lua: SEM_ACQUIRE });
      redis.defineCommand('semRelease', { numberOfKeys: 2, lua: SEM_RELEASE });
      const id = randomBytes(8).toString('hex');
      return {
        async acquire(_kind, key) {
          const held = await redis.semAcquire(key, `${key}:q`, id, options.limit);
          if (held === 0) await blocking.blpop(`${key}:n:${id}`, 0);
          return key;
        },
        async release(key) {
          await redis.semRelease(key, `${key}:q`, id);
        },
        async close() {
          await Promise.all([closeRedis(redis), closeRedis(blocking)]);
        },
      };
    },
  };
}
