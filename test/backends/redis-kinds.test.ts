/**
 * Read-write locks and semaphores on a real redis-server, beyond the conformance suite: the
 * handoff grants a batch (all readers at the head of the queue, several semaphore waiters) in the
 * one release script; the queue keeps arrival order across modes; a limit is checked against the
 * waiters too; expired shared holders are swept; and a shared key leaves nothing behind.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import { lockKeys } from '../../src/backends/redis/keys.js';
import { LimitMismatchError } from '../../src/core/errors.js';
import type { Lease } from '../../src/core/lease.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { waitUntil } from '../harness/process.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

let server: RedisServer;
let admin: Redis;
const managers: LockManager[] = [];

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url);
});
afterEach(async () => {
  await Promise.allSettled(managers.splice(0).map((m) => m.close()));
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

function client(): LockManager {
  const locks = createLocks({ backend: redisBackend({ url: server.url }), waitMs: 10_000 });
  managers.push(locks);
  return locks;
}

let keyCounter = 0;
const freshKey = (label: string) => `kinds/${label}-${(keyCounter += 1)}`;

async function waiters(locks: LockManager, key: string, count: number): Promise<void> {
  await waitUntil(
    `${count} waiters on ${key}`,
    async () => (await locks.inspect(key))?.waiters === count,
    5_000,
  );
}

/** Every Redis key of a lock that exists now (its lock key and its suffixed keys). */
async function keysOf(key: string): Promise<string[]> {
  const { lock } = lockKeys('distlock:', key);
  return (await admin.keys(`${lock.replace(/[{}*?[\]]/g, '\\$&')}*`)).sort();
}

describe('redis kinds: handoff', () => {
  it('a writer that leaves hands the key to every reader at the head of the queue at once, not past a writer', async () => {
    const probe = client();
    const key = freshKey('batch');
    const writer = await client().readWrite(key).write();
    const order: string[] = [];
    const track = (name: string) => (lease: Lease) => (order.push(name), lease);
    const r1 = client().readWrite(key).read().then(track('r1'));
    await waiters(probe, key, 1);
    const r2 = client().readWrite(key).read().then(track('r2'));
    await waiters(probe, key, 2);
    const w2 = client().readWrite(key).write().then(track('w2'));
    await waiters(probe, key, 3);
    const r3 = client().readWrite(key).read().then(track('r3'));
    await waiters(probe, key, 4);

    await writer.release(); // one release script grants r1 and r2 together, and stops at w2
    const [lease1, lease2] = await Promise.all([r1, r2]);
    const info = await probe.inspect(key);
    expect(info?.mode).toBe('shared');
    expect(info?.holders.map((h) => h.token).sort()).toEqual([lease1.token, lease2.token].sort());
    expect(info?.waiters).toBe(2);
    expect(lease1.fence).toBeGreaterThan(writer.fence);
    expect(lease2.fence).toBeGreaterThan(lease1.fence);

    await lease1.release();
    await lease2.release();
    const second = await w2;
    // r1 and r2 resolve in whatever order their wake-ups arrive; their fences show the grant order.
    expect(order.slice(0, 2).sort()).toEqual(['r1', 'r2']);
    expect(order[2]).toBe('w2');
    await second.release();
    const last = await r3;
    expect(order[3]).toBe('r3');
    expect(last.fence).toBeGreaterThan(second.fence);
    await last.release();
    expect(await keysOf(key)).toEqual([]);
  });

  it('a release of the mutex grants several semaphore waiters at once, up to the limit, in arrival order', async () => {
    const probe = client();
    const key = freshKey('permits');
    const mutex = await client().acquire(key); // the mutex excludes every permit
    const granted: number[] = [];
    const permits: Promise<Lease>[] = [];
    for (let i = 0; i < 4; i += 1) {
      permits.push(
        client()
          .semaphore(key, { limit: 3 })
          .acquire()
          .then((lease) => (granted.push(i), lease)),
      );
      await waiters(probe, key, i + 1);
    }
    await mutex.release();
    const first = await Promise.all(permits.slice(0, 3));
    expect(granted.slice().sort()).toEqual([0, 1, 2]);
    // Granted by one script in arrival order: their fences say so.
    expect(first[0]!.fence).toBeLessThan(first[1]!.fence);
    expect(first[1]!.fence).toBeLessThan(first[2]!.fence);
    const info = await probe.inspect(key);
    expect(info).toMatchObject({ mode: 'shared', limit: 3, waiters: 1 });
    expect(info?.holders).toHaveLength(3);
    await first[1]!.release(); // a permit comes back: the fourth waiter gets it
    const fourth = await permits[3]!;
    expect(granted[3]).toBe(3);
    await Promise.all([first[0]!.release(), first[2]!.release(), fourth.release()]);
    expect(await keysOf(key)).toEqual([]);
  });

  it('a writer waits for a reader that died, and gets the key when its TTL ends (swept)', async () => {
    const probe = client();
    const key = freshKey('dead-reader');
    const dead = await client().readWrite(key).read({ ttlMs: 400 });
    const alive = await client().readWrite(key).read({ ttlMs: 10_000 });
    const started = Date.now();
    const writing = client().readWrite(key).write();
    await waiters(probe, key, 1);
    await alive.release();
    const writer = await writing;
    // Not before the dead reader's TTL (measured from its grant), and soon after it.
    expect(Date.now() - started).toBeGreaterThan(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(writer.fence).toBeGreaterThan(alive.fence);
    expect(dead.fence).toBeLessThan(alive.fence);
    await writer.release();
  });
});

describe('redis kinds: limits', () => {
  it('a limit is checked against the waiters too, not only the holders', async () => {
    const probe = client();
    const key = freshKey('queued-limit');
    const writer = await client().readWrite(key).write();
    const permit = client().semaphore(key, { limit: 2 }).acquire();
    await waiters(probe, key, 1);
    await expect(client().readWrite(key).read({ waitMs: 500 })).rejects.toBeInstanceOf(
      LimitMismatchError,
    );
    await expect(client().semaphore(key, { limit: 5 }).tryAcquire()).rejects.toMatchObject({
      code: 'LIMIT_MISMATCH',
      limit: 5,
      heldLimit: 2,
    });
    await writer.release();
    await (await permit).release();
  });
});

describe('redis kinds: state', () => {
  it("a shared key's keys expire with its longest-lived holder", async () => {
    const key = freshKey('expiry');
    const short = await client().semaphore(key, { limit: 5 }).acquire({ ttlMs: 2_000 });
    const long = await client().semaphore(key, { limit: 5 }).acquire({ ttlMs: 6_000 });
    const { lock } = lockKeys('distlock:', key);
    for (const redisKey of [lock, `${lock}:s`, `${lock}:h`]) {
      const ttl = await admin.pttl(redisKey);
      expect(ttl, redisKey).toBeGreaterThan(4_000);
      expect(ttl, redisKey).toBeLessThanOrEqual(6_000);
    }
    await long.release(); // the marker now lives as long as the short holder
    const ttl = await admin.pttl(lock);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2_000);
    await short.release();
    expect(await keysOf(key)).toEqual([]);
  });
});
