/**
 * The Redlock rows, all on the same five redis-servers: the network floor (one parallel PING to
 * every node per step), distlock's Redlock backend (quorum fences, and `fencing: 'none'`), npm
 * `redlock` 5.0.0-beta.2 over five clients, and redis-semaphore's `RedlockMutex`, each peer at
 * its defaults and tuned.
 */
import Redlock, { ExecutionError, type Lock as RedlockLock, type Settings } from 'redlock';
import { RedlockMutex, TimeoutError } from 'redis-semaphore';
import type { Redis } from 'ioredis';
import { redlockBackend } from '../../src/backends/redlock/index.js';
import type { Contender, LockClient } from './contender.js';
import { distlock } from './distlock.js';
import { closeRedis, connectRedis } from './redis-connection.js';

/** One connection to each node. */
async function connectAll(ports: readonly number[]): Promise<Redis[]> {
  return Promise.all(ports.map((port) => connectRedis(port)));
}

async function closeAll(clients: readonly Redis[]): Promise<void> {
  await Promise.all(clients.map((client) => closeRedis(client)));
}

/** PING every node in parallel to acquire, and again to release: two rounds, no lock. */
export function pingRounds(ports: readonly number[]): Contender {
  return {
    name: 'PING rounds',
    role: 'floor',
    excludes: false,
    tuned: false,
    settings: `PING ×${ports.length} in parallel, twice (2 rounds, no lock)`,
    async createClient(): Promise<LockClient<true>> {
      const clients = await connectAll(ports);
      return {
        async acquire() {
          await Promise.all(clients.map((client) => client.ping()));
          return true;
        },
        async release() {
          await Promise.all(clients.map((client) => client.ping()));
        },
        close: () => closeAll(clients),
      };
    },
  };
}

/** distlock's Redlock backend over its own five clients, at the core's retry defaults and tuned. */
export function distlockRedlock(
  ports: readonly number[],
  options: { ttlMs: number; fencing: 'quorum' | 'none'; tuned: boolean },
): Contender {
  return distlock({
    label: `redlock${options.fencing === 'none' ? ", fencing 'none'" : ''}${options.tuned ? ' (tuned)' : ''}`,
    ttlMs: options.ttlMs,
    tuned: options.tuned,
    ...(options.tuned ? { retry: { delayMs: 1, maxDelayMs: 2, factor: 1, jitter: 0.5 } } : {}),
    settings: `fencing '${options.fencing}', ${options.tuned ? 'retry every ~1 ms' : 'core retry defaults'}, pub/sub wake-ups`,
    open: async () => {
      const clients = await connectAll(ports);
      return {
        backend: redlockBackend({ clients, fencing: options.fencing }),
        close: () => closeAll(clients),
      };
    },
  });
}

/** npm `redlock` over five clients with `settings` (defaults when empty). */
export function npmRedlock(
  ports: readonly number[],
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
      const clients = await connectAll(ports);
      const locks = new Redlock(clients, options.settings);
      locks.on('error', () => {});
      return {
        async acquire(key) {
          try {
            return await locks.acquire([key], options.ttlMs);
          } catch (error) {
            if (error instanceof ExecutionError) return null;
            throw error;
          }
        },
        async release(lock) {
          await lock.release();
        },
        close: () => closeAll(clients),
      };
    },
  };
}

/** redis-semaphore's `RedlockMutex` over five clients (retryInterval default 10 ms). */
export function redlockMutex(
  ports: readonly number[],
  options: { ttlMs: number; tuned: boolean; retryIntervalMs?: number },
): Contender {
  const retry =
    options.retryIntervalMs === undefined ? {} : { retryInterval: options.retryIntervalMs };
  return {
    name: `RedlockMutex (${options.tuned ? 'tuned' : 'defaults'})`,
    role: 'peer',
    excludes: true,
    tuned: options.tuned,
    settings:
      options.retryIntervalMs === undefined
        ? 'defaults: retryInterval 10, acquireTimeout 10000'
        : `retryInterval ${options.retryIntervalMs}, acquireTimeout 10000`,
    async createClient(): Promise<LockClient<RedlockMutex>> {
      const clients = await connectAll(ports);
      return {
        async acquire(key) {
          const mutex = new RedlockMutex(clients, key, {
            lockTimeout: options.ttlMs,
            refreshInterval: 0,
            ...retry,
          });
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
        close: () => closeAll(clients),
      };
    },
  };
}
