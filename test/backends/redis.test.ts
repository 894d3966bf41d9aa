/**
 * The Redis backend against a real redis-server: the conformance suite, then fault tests on a
 * second server (killed, restarted, connections dropped) and the queue's behaviour (FIFO order,
 * waiters that abort or die).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend, redisBackend } from '../../src/backends/redis/index.js';
import { lockKeys } from '../../src/backends/redis/keys.js';
import { REDIS_DEFAULTS } from '../../src/backends/redis/options.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockError,
  LockLostError,
} from '../../src/core/errors.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { killAndWait, waitUntil } from '../harness/process.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const fixture = fileURLToPath(new URL('../fixtures/redis-backend.ts', import.meta.url));

let conformanceServer: RedisServer;
beforeAll(async () => {
  conformanceServer = await startRedis();
  process.env.DISTLOCK_REDIS_URL = conformanceServer.url;
});
afterAll(async () => {
  await conformanceServer?.stop();
});

runConformanceSuite({
  name: 'redis',
  createBackend: () => redisBackend({ url: conformanceServer.url }),
  processBackendModule: fixture,
  // Nothing listens on port 1 of loopback: every connect is refused.
  createUnreachableBackend: () => redisBackend({ url: 'redis://127.0.0.1:1' }),
  // The server has no such user: AUTH is refused (and ioredis's error carries the arguments).
  createBackendWithSecret: () => {
    const secret = 'Secr3tPw-conformance';
    const { port } = new URL(conformanceServer.url);
    return {
      backend: redisBackend({ url: `redis://nobody:${secret}@127.0.0.1:${port}` }),
      secret,
    };
  },
});

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let keyCounter = 0;
const freshKey = (label: string) => `redis-test/${label}-${(keyCounter += 1)}`;

describe('redis backend options', () => {
  it('rejects a malformed URL without echoing it (it may carry a password)', () => {
    for (const url of ['not a url', 'http://user:s3cret@host:1', 'redis//:s3cret@host']) {
      let caught: unknown;
      try {
        redisBackend({ url });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).option).toBe('url');
      expect(String((caught as Error).message)).not.toContain('s3cret');
    }
  });

  it('rejects bad options naming the option', () => {
    expect(() => redisBackend({} as never)).toThrow(InvalidArgumentError);
    expect(() => redisBackend({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 0 })).toThrow(
      /commandTimeoutMs/,
    );
    expect(() => redisBackend({ client: {} as never })).toThrow(/client/);
  });

  it('never shows the password in its name or in connection errors', async () => {
    const backend = redisBackend({
      url: 'redis://:hunter2-secret@127.0.0.1:1',
      commandTimeoutMs: 500,
    });
    expect(backend.name).not.toContain('hunter2');
    const error = await backend
      .tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as LockError).retryable).toBe(true);
    expect(String((error as Error).message)).not.toContain('hunter2');
    await backend.close();
  });
});

describe('redis backend faults and queue', () => {
  let server: RedisServer;
  const managers: LockManager[] = [];
  const clients: Redis[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    server = await startRedis();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    await Promise.allSettled(managers.splice(0).map((m) => m.close()));
    for (const client of clients.splice(0)) client.disconnect();
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server?.stop();
  });

  function manager(options: Partial<ConstructorParameters<typeof RedisBackend>[0]> = {}) {
    const locks = createLocks({
      backend: redisBackend({ url: server.url, ...options }),
      ttlMs: 10_000,
      waitMs: 10_000,
    });
    managers.push(locks);
    return locks;
  }

  async function waitersOf(locks: LockManager, key: string, count: number) {
    await waitUntil(
      `${count} waiters on ${key}`,
      async () => (await locks.inspect(key))?.waiters === count,
      5_000,
    );
  }

  it('many calls issued in one tick all go out (flushed in batches) and all succeed', async () => {
    const locks = manager();
    const keys = Array.from({ length: 203 }, (_, i) => freshKey(`burst-${i}`));
    // All in one synchronous loop: one corked socket, flushed every few calls and at tick end.
    const leases = await Promise.all(keys.map((key) => locks.acquire(key, { waitMs: 5_000 })));
    expect(new Set(leases.map((lease) => lease.key)).size).toBe(keys.length);
    const outcomes = await Promise.all(leases.map((lease) => lease.release()));
    expect(outcomes.every((outcome) => outcome === 'released')).toBe(true);
    const again = await Promise.all(keys.map((key) => locks.tryAcquire(key)));
    expect(again.every((lease) => lease !== null)).toBe(true);
    await Promise.all(again.map((lease) => lease!.release()));
  });

  it('serves queued waiters in arrival order across clients, one handoff per release', async () => {
    const key = freshKey('fifo');
    const holder = manager();
    const lease = await holder.acquire(key);
    const order: number[] = [];
    const fences: bigint[] = [];
    const waiters: Promise<void>[] = [];
    for (let i = 0; i < 6; i += 1) {
      waiters.push(
        manager()
          .acquire(key)
          .then(async (next) => {
            order.push(i);
            fences.push(next.fence);
            await next.release();
          }),
      );
      await waitersOf(holder, key, i + 1);
    }
    await lease.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(fences).toEqual([2n, 3n, 4n, 5n, 6n, 7n].map((f) => lease.fence + f - 1n));
  });

  it('a queue that never empties stays alive: every join renews its keys', async () => {
    // Under steady contention no waiter heartbeats (each is served within milliseconds), so the
    // joins alone must keep the queue's keys alive past their first TTL (2 × queueEntryTtlMs).
    // Keys that expired under their waiters lost their places: each waiter then waited for its
    // next heartbeat (up to a third of queueEntryTtlMs) instead of its handoff.
    const entryTtlMs = 1_000;
    const key = freshKey('sustained');
    const { queue, waiters } = lockKeys(REDIS_DEFAULTS.prefix, key);
    // Six clients that take and give back at once: the queue is never empty.
    const lockers = Array.from({ length: 6 }, () => manager({ queueEntryTtlMs: entryTtlMs }));
    const admin = new Redis(server.url);
    clients.push(admin);
    let stop = false;
    const loops = lockers.map(async (locks) => {
      while (!stop) await (await locks.acquire(key)).release();
    });
    const lowestTtl = { queue: Infinity, waiters: Infinity };
    const until = Date.now() + 3 * entryTtlMs; // past the first TTL of the queue's keys
    while (Date.now() < until) {
      const [queueTtl, waitersTtl] = await Promise.all([admin.pttl(queue), admin.pttl(waiters)]);
      if (queueTtl > 0) lowestTtl.queue = Math.min(lowestTtl.queue, queueTtl);
      if (waitersTtl > 0) lowestTtl.waiters = Math.min(lowestTtl.waiters, waitersTtl);
      await delay(10);
    }
    stop = true;
    await Promise.all(loops);
    expect(lowestTtl.queue).toBeGreaterThan(entryTtlMs);
    expect(lowestTtl.waiters).toBeGreaterThan(entryTtlMs);
  }, 20_000);

  it('without blocking connections, waiters poll and are still served in order', async () => {
    const key = freshKey('polling');
    const holder = manager();
    const lease = await holder.acquire(key);
    const order: number[] = [];
    const waiters: Promise<void>[] = [];
    for (let i = 0; i < 3; i += 1) {
      waiters.push(
        manager({ maxBlockingConnections: 0, pollIntervalMs: 20 })
          .acquire(key)
          .then(async (next) => {
            order.push(i);
            await next.release();
          }),
      );
      await waitersOf(holder, key, i + 1);
    }
    await lease.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2]);
  });

  it('tryAcquire does not jump the queue when the holder expires', async () => {
    const key = freshKey('no-jump');
    const holder = manager();
    await holder.acquire(key, { ttlMs: 300 });
    const waiter = manager().acquire(key);
    await waitersOf(holder, key, 1);
    await delay(350); // the holder's TTL ran out; the waiter has not polled yet, or just did
    expect(await manager().tryAcquire(key)).toBeNull();
    const lease = await waiter;
    expect((await holder.inspect(key))?.token).toBe(lease.token);
    await lease.release();
  });

  it('scripts flushed from the server (restart, failover, SCRIPT FLUSH) are sent again', async () => {
    const key = freshKey('noscript');
    const locks = manager();
    await (await locks.acquire(key)).release();
    const client = new Redis(server.url);
    clients.push(client);
    await client.script('FLUSH');
    // Several calls in one tick share one write; each falls back to EVAL on its own.
    const leases = await Promise.all([0, 1, 2].map((i) => locks.acquire(`${key}/${i}`)));
    for (const lease of leases) expect(lease.fence).toBeGreaterThan(0n);
    await client.script('FLUSH');
    expect(await Promise.all(leases.map((lease) => lease.release()))).toEqual([
      'released',
      'released',
      'released',
    ]);
  });

  it('after SCRIPT FLUSH, a waiter on a contended key (enqueue sent on its blocking connection) is still served', async () => {
    const key = freshKey('noscript-queued');
    const holder = manager();
    const waiter = manager();
    const client = new Redis(server.url);
    clients.push(client);
    // Queue once, so that the waiter's next acquire of this key takes the blocking path.
    let held = await holder.acquire(key);
    let waiting = waiter.acquire(key);
    await waitersOf(holder, key, 1);
    await held.release();
    await (await waiting).release();

    held = await holder.acquire(key);
    await client.script('FLUSH');
    waiting = waiter.acquire(key);
    await waitersOf(holder, key, 1);
    await held.release();
    const granted = await waiting;
    expect(granted.fence).toBe(held.fence + 1n);
    await client.script('FLUSH');
    await granted.release();
    // And a direct grant on that path (the lock is free) after a flush.
    await client.script('FLUSH');
    const direct = await waiter.acquire(key, { waitMs: 2_000 });
    expect(direct.fence).toBe(granted.fence + 1n);
    await direct.release();
  });

  it('calls the server does not answer in time fail typed, and a late grant is given back', async () => {
    const key = freshKey('command-timeout');
    const locks = manager({ commandTimeoutMs: 100 });
    await locks.inspect(key); // connected
    const client = new Redis(server.url);
    clients.push(client);
    await client.call('CLIENT', 'PAUSE', '700', 'ALL');
    const started = Date.now();
    const outcomes = await Promise.allSettled(
      [0, 1, 2].map((i) => locks.tryAcquire(`${key}/${i}`)),
    );
    expect(Date.now() - started).toBeLessThan(650);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason as Error;
      expect(reason).toBeInstanceOf(BackendUnavailableError);
      expect(reason.message).toMatch(/no answer within 100 ms/);
    }
    for (const i of [0, 1, 2]) {
      await waitUntil(
        'late grant given back',
        async () => !(await locks.inspect(`${key}/${i}`)),
        5_000,
      );
    }
  });

  it('an abort while the first request is in flight gives a direct grant back', async () => {
    const key = freshKey('abort-first-step');
    const locks = manager();
    await locks.inspect(key); // connected, so the first step really is in flight below
    const controller = new AbortController();
    const attempt = locks.acquire(key, { signal: controller.signal });
    const reason = new Error('not any more');
    controller.abort(reason);
    await expect(attempt).rejects.toBe(reason);
    expect(await locks.inspect(key)).toBeNull();
    const lease = await locks.acquire(key);
    await lease.release();
  });

  it('a deadline that passes while the first request is in flight is a timeout', async () => {
    const key = freshKey('deadline-first-step');
    const locks = manager();
    await locks.inspect(key);
    const client = new Redis(server.url);
    clients.push(client);
    // Hold the server for longer than the wait: the first step's reply comes after the deadline.
    const pause = client.call('CLIENT', 'PAUSE', '150', 'WRITE');
    await pause;
    const attempt = locks.acquire(key, { waitMs: 20 });
    await expect(attempt).rejects.toMatchObject({ code: 'TIMEOUT' });
    await waitUntil('lock given back', async () => (await locks.inspect(key)) === null, 5_000);
  });

  it('a waiter that aborts leaves the queue and is never granted', async () => {
    const key = freshKey('abort');
    const holder = manager();
    const lease = await holder.acquire(key);
    const controller = new AbortController();
    const quitter = manager().acquire(key, { signal: controller.signal });
    await waitersOf(holder, key, 1);
    const stayer = manager().acquire(key);
    await waitersOf(holder, key, 2);
    const reason = new Error('changed my mind');
    controller.abort(reason);
    await expect(quitter).rejects.toBe(reason);
    expect((await holder.inspect(key))?.waiters).toBe(1);
    await lease.release();
    const next = await stayer;
    expect(next.fence).toBe(lease.fence + 1n);
    await next.release();
    expect(await holder.inspect(key)).toBeNull();
  });

  it('a waiter whose process died does not block the queue', async () => {
    const key = freshKey('dead-waiter');
    const holder = manager({ queueEntryTtlMs: 600 });
    const lease = await holder.acquire(key);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { createBackend } from ${JSON.stringify(fixture)};
         const backend = createBackend();
         await backend.acquire({ key: ${JSON.stringify(key)}, token: 'dead', ttlMs: 60000 },
           { signal: new AbortController().signal });`,
      ],
      {
        env: {
          ...process.env,
          DISTLOCK_REDIS_URL: server.url,
          DISTLOCK_REDIS_QUEUE_ENTRY_TTL_MS: '600',
        },
        stdio: 'ignore',
      },
    );
    try {
      await waitersOf(holder, key, 1);
    } finally {
      await killAndWait(child);
    }
    const live = manager({ queueEntryTtlMs: 600 }).acquire(key);
    await waitersOf(holder, key, 2);
    await delay(700); // the dead waiter's entry has expired: nobody heartbeats it
    await lease.release();
    const next = await live;
    expect(next.token).not.toBe('dead');
    expect((await holder.inspect(key))?.token).toBe(next.token);
    await next.release();
  });

  it('a handed-off lease is dated from before the grant, however long the wait', async () => {
    const key = freshKey('started-at');
    const holder = manager();
    const lease = await holder.acquire(key);
    const waiter = manager().acquire(key, { ttlMs: 2_000 });
    await waitersOf(holder, key, 1);
    await delay(1_500); // a wait close to the waiter's TTL must not eat into its lease
    const releasedAt = Date.now();
    await lease.release();
    const next = await waiter;
    const remaining = (await holder.inspect(key))!.remainingMs!;
    // Local deadline: after the grant by the TTL (less drift), never after Redis's expiry.
    expect(next.expiresAt).toBeGreaterThan(releasedAt + 2_000 - 500);
    expect(next.expiresAt).toBeLessThanOrEqual(Date.now() + remaining + 5);
    await next.release();
  });

  it('a connection dropped with CLIENT KILL: waiters keep their place or retry, holders recover', async () => {
    const key = freshKey('client-kill');
    const holder = manager();
    const lease = await holder.acquire(key);
    const waiter = manager().acquire(key);
    await waitersOf(holder, key, 1);
    await server.cli(['client', 'kill', 'type', 'normal']);
    // The holder's next call may fail once (retryable) while its client reconnects.
    let outcome: string | undefined;
    await waitUntil(
      'release after reconnect',
      async () => {
        try {
          outcome = await lease.release();
          return true;
        } catch (error) {
          expect((error as LockError).retryable).toBe(true);
          return false;
        }
      },
      5_000,
    );
    expect(outcome).toBe('released');
    const next = await waiter;
    expect(next.fence).toBeGreaterThan(lease.fence);
    await next.release();
  });

  it('Redis killed while a lease is held: the signal fires by the deadline, calls fail typed and fast', async () => {
    const key = freshKey('killed');
    const locks = manager();
    const lease = await locks.acquire(key, { ttlMs: 1_500 });
    const waiting = manager().acquire(key, { waitMs: 2_500 });
    await waitersOf(locks, key, 1);
    const lost = new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
    );
    await server.kill();
    const lostAt = await lost;
    expect(lostAt).toBeLessThanOrEqual(lease.expiresAt + 500); // timers may run late on a busy machine
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
    const started = Date.now();
    const error = await locks.tryAcquire(freshKey('down')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as LockError).retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_500);
    await expect(lease.extend()).rejects.toBeInstanceOf(LockError);
    await expect(waiting).rejects.toBeInstanceOf(LockError);

    // Restarted (empty: no persistence): acquires work again once the client has reconnected.
    await server.restart();
    const fresh = freshKey('restarted');
    let again: Awaited<ReturnType<typeof locks.acquire>> | undefined;
    await waitUntil(
      'an acquire after the restart',
      async () => {
        again = await locks.acquire(fresh, { waitMs: 0 });
        return true;
      },
      10_000,
      100,
    );
    expect(again!.fence).toBe(1n);
    expect(await again!.release()).toBe('released');
  });

  it('close() ends queued waits, leaves their queue entries behind, and keeps a passed client open', async () => {
    const client = new Redis(server.port, '127.0.0.1');
    clients.push(client);
    const key = freshKey('close');
    const holder = manager();
    const lease = await holder.acquire(key);
    const backend = redisBackend({ client });
    const waiting = backend.acquire(
      { key, token: 'w', ttlMs: 1_000 },
      { signal: new AbortController().signal },
    );
    await waitersOf(holder, key, 1);
    await backend.close();
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    expect((await holder.inspect(key))?.waiters).toBe(0);
    expect(await client.ping()).toBe('PONG');
    await lease.release();
  });
});
