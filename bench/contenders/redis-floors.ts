/**
 * The floors on Redis: what any Redis lock must pay at least.
 * - `PING pairs`: two round trips and nothing else (acquire + release of the cheapest lock).
 * - `hand-rolled`: `SET key token NX PX ttl` to acquire, a Lua compare-and-delete to release
 *   (EVALSHA through ioredis' defineCommand): the least a correct single-instance lock does.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sleep, type Contender, type LockClient } from './contender.js';
import { closeRedis, connectRedis } from './redis-connection.js';

const COMPARE_AND_DELETE = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

type ScriptedRedis = Redis & {
  benchCompareAndDelete(key: string, token: string): Promise<number>;
};

/** Two PINGs per "acquire + release": the network floor. */
export function pingPairs(port: number): Contender {
  return {
    name: 'PING pairs',
    role: 'floor',
    excludes: false,
    tuned: false,
    settings: 'PING + PING (2 round trips, no lock)',
    async createClient(): Promise<LockClient<true>> {
      const redis = await connectRedis(port);
      return {
        async acquire() {
          await redis.ping();
          return true;
        },
        async release() {
          await redis.ping();
        },
        close: () => closeRedis(redis),
      };
    },
  };
}

/** SET NX PX + Lua compare-and-delete, retrying every `retryMs` while held. */
export function handRolled(port: number, options: { ttlMs: number; retryMs: number }): Contender {
  return {
    name: 'hand-rolled SET NX',
    role: 'floor',
    excludes: true,
    tuned: false,
    settings: `SET NX PX ${options.ttlMs} + EVALSHA compare-and-delete; retry every ${options.retryMs} ms`,
    async createClient(): Promise<LockClient<{ key: string; token: string }>> {
      const redis = (await connectRedis(port)) as ScriptedRedis;
      redis.defineCommand('benchCompareAndDelete', { numberOfKeys: 1, lua: COMPARE_AND_DELETE });
      return {
        async acquire(key) {
          const token = randomUUID();
          while ((await redis.set(key, token, 'PX', options.ttlMs, 'NX')) !== 'OK') {
            await sleep(options.retryMs);
          }
          return { key, token };
        },
        async release({ key, token }) {
          await redis.benchCompareAndDelete(key, token);
        },
        close: () => closeRedis(redis),
      };
    },
  };
}
