/**
 * The floor of a *fair* Redis lock under contention (B2 only): the least a lock that hands over
 * in FIFO order must do. A waiter joins a list and blocks (`BLPOP`) on its own connection; the
 * release pops the next waiter, makes it the holder and pushes it a wake-up, all in one script, so
 * the next holder needs no round trip of its own. No fences, no TTL for waiters, no recovery from
 * a dead waiter, no timeouts: it only runs in the benchmark, on a healthy server.
 *
 * It shows what a fair handoff costs on this machine: every critical section waits for the next
 * client to wake up, whereas an unfair lock lets the client that just released take the lock
 * straight back (see "same holder" in B2).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Contender, LockClient } from './contender.js';
import { closeRedis, connectRedis } from './redis-connection.js';

/** KEYS: lock, queue. ARGV: id, ttl. Returns 1 held, 0 queued. */
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 0`;

/** KEYS: lock, queue. ARGV: id, ttl. Hands the lock to the next waiter, or frees it. */
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local next = redis.call('LPOP', KEYS[2])
if next then
  redis.call('SET', KEYS[1], next, 'PX', ARGV[2])
  redis.call('RPUSH', KEYS[1] .. ':n:' .. next, 'g')
  return 2
end
redis.call('DEL', KEYS[1])
return 1`;

type FloorRedis = Redis & {
  fifoAcquire(lock: string, queue: string, id: string, ttlMs: number): Promise<number>;
  fifoRelease(lock: string, queue: string, id: string, ttlMs: number): Promise<number>;
};

/** The FIFO handoff floor, with one lock connection and one blocking connection per client. */
export function fifoHandoffFloor(port: number, options: { ttlMs: number }): Contender {
  return {
    name: 'FIFO handoff floor',
    role: 'floor',
    excludes: true,
    tuned: false,
    settings: 'RPUSH to queue + BLPOP own list; release script pops the next waiter and wakes it',
    async createClient(): Promise<LockClient<string>> {
      const redis = (await connectRedis(port)) as FloorRedis;
      const blocking = await connectRedis(port);
      redis.defineCommand('fifoAcquire', { numberOfKeys: 2, lua: ACQUIRE });
      redis.defineCommand('fifoRelease', { numberOfKeys: 2, lua: RELEASE });
      const id = randomBytes(8).toString('hex');
      return {
        async acquire(key) {
          const held = await redis.fifoAcquire(key, `${key}:q`, id, options.ttlMs);
          if (held === 0) await blocking.blpop(`${key}:n:${id}`, 0);
          return key;
        },
        async release(key) {
          await redis.fifoRelease(key, `${key}:q`, id, options.ttlMs);
        },
        async close() {
          await Promise.all([closeRedis(redis), closeRedis(blocking)]);
        },
      };
    },
  };
}
