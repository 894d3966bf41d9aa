/**
 * The peers on Redis, each at its defaults and with its fastest sensible retry settings:
 * `redlock` 5.0.0-beta.2 (one-node Redlock) and `redis-semaphore`'s `Mutex`.
 */
import Redlock, { ExecutionError, type Lock as RedlockLock, type Settings } from 'redlock';
import { Mutex, TimeoutError } from 'redis-semaphore';
import { type Contender, type LockClient } from './contender.js';
import { closeRedis, connectRedis } from './redis-connection.js';

/** redlock with `settings` (defaults when empty): retryCount 10, retryDelay 200 ms, jitter 100 ms. */
export function redlock(
  port: number,
  options: { ttlMs: number; tuned: boolean; settings: Partial<Settings> },
): Contender {
  const shown = Object.keys(options.settings).length
    ? Object.entries(options.settings)
        .map(([name, value]) => `${name} ${value}`)
        .join(', ')
    : 'defaults: retryCount 10, retryDelay 200, retryJitter 100';
  return {
    name: `redlock (${options.tuned ? 'tuned' : 'defaults'})`,
    role: 'peer',
    excludes: true,
    tuned: options.tuned,
    settings: shown,
    async createClient(): Promise<LockClient<RedlockLock>> {
      const redis = await connectRedis(port);
      const locks = new Redlock([redis], options.settings);
      // redlock re-emits client errors; a benchmark reports them through the failing call instead.
      locks.on('error', () => {});
      return {
        async acquire(key) {
          try {
            return await locks.acquire([key], options.ttlMs);
          } catch (error) {
            if (error instanceof ExecutionError) return null; // gave up after its retries
            throw error;
          }
        },
        async release(lock) {
          await lock.release();
        },
        close: () => closeRedis(redis),
      };
    },
  };
}

/** redis-semaphore Mutex with `retryIntervalMs` (default 10 ms) and its 10 s acquire timeout. */
export function redisSemaphore(
  port: number,
  options: { ttlMs: number; tuned: boolean; retryIntervalMs?: number },
): Contender {
  const retry =
    options.retryIntervalMs === undefined ? {} : { retryInterval: options.retryIntervalMs };
  return {
    name: `redis-semaphore (${options.tuned ? 'tuned' : 'defaults'})`,
    role: 'peer',
    excludes: true,
    tuned: options.tuned,
    settings:
      options.retryIntervalMs === undefined
        ? 'defaults: retryInterval 10, acquireTimeout 10000'
        : `retryInterval ${options.retryIntervalMs}, acquireTimeout 10000`,
    async createClient(): Promise<LockClient<Mutex>> {
      const redis = await connectRedis(port);
      return {
        async acquire(key) {
          const mutex = new Mutex(redis, key, { lockTimeout: options.ttlMs, ...retry });
          try {
            await mutex.acquire();
            return mutex;
          } catch (error) {
            if (error instanceof TimeoutError) return null;
            throw error;
          }
        },
        async release(mutex) {
          await mutex.release();
        },
        close: () => closeRedis(redis),
      };
    },
  };
}
