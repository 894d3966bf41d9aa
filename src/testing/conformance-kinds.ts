/**
 * The conformance suite's tests of the lock kinds beyond the mutex: read-write locks and counting
 * semaphores (`capabilities.shared`). A backend without them must refuse both with
 * `UnsupportedError`; one with them must obey the rules of `core/kinds.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  LimitMismatchError,
  LockLostError,
  LockTimeoutError,
  UnsupportedError,
} from '../core/errors.js';
import type { Lease } from '../core/lease.js';
import type { LockManager } from '../core/locks.js';
import { maxOverlap, runContenders } from './children.js';
import { abortedAt, delay, now, queued, type SuiteContext } from './suite-context.js';

/** Whether `promise` is still pending after the microtasks and timers of `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await delay(ms);
  return !settled;
}

export function kindsTests(ctx: SuiteContext): void {
  const { options, ms, client, freshKey } = ctx;

  /**
   * A client whose backend offers shared holdings, or `undefined` after checking that a backend
   * without them refuses both kinds with `UnsupportedError` (so that every test asserts something).
   */
  async function sharedClient(): Promise<LockManager | undefined> {
    const locks = await client();
    if (locks.backend.capabilities.shared) return locks;
    expect(() => locks.readWrite('k')).toThrow(UnsupportedError);
    expect(() => locks.semaphore('k', { limit: 2 })).toThrow(UnsupportedError);
    return undefined;
  }

  async function sharedClients(count: number): Promise<LockManager[] | undefined> {
    const first = await sharedClient();
    if (!first) return undefined;
    return [first, ...(await Promise.all(Array.from({ length: count - 1 }, () => client())))];
  }

  describe('read-write locks', () => {
    it('readers share the key; a writer (and the mutex) waits for all of them', async () => {
      const clients = await sharedClients(3);
      if (!clients) return;
      const [a, b, c] = clients as [LockManager, LockManager, LockManager];
      const key = freshKey('readers');
      const r1 = await a.readWrite(key).read();
      const r2 = await b.readWrite(key).read({ waitMs: 0 });
      const r3 = await c.readWrite(key).tryRead();
      expect(r3).not.toBeNull();
      expect([r1.mode, r2.mode, r3!.mode]).toEqual(['shared', 'shared', 'shared']);
      expect(r2.fence).toBeGreaterThan(r1.fence);
      expect(r3!.fence).toBeGreaterThan(r2.fence);
      const info = await a.inspect(key);
      expect(info?.mode).toBe('shared');
      expect(info?.limit).toBe(Infinity);
      expect(new Set(info?.holders.map((h) => h.token))).toEqual(
        new Set([r1.token, r2.token, r3!.token]),
      );
      expect(await a.readWrite(key).tryWrite()).toBeNull();
      await expect(b.acquire(key, { waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);

      const writing = c.readWrite(key).write({ waitMs: ms(10_000) });
      await r1.release();
      await r2.release();
      expect(await pendingAfter(writing, ms(150)), 'a writer got in beside a reader').toBe(true);
      await r3!.release();
      const writer = await writing;
      expect(writer.mode).toBe('exclusive');
      expect(writer.fence).toBeGreaterThan(r3!.fence);
      await writer.release();
    });

    it('a writer excludes readers and other writers', async () => {
      const clients = await sharedClients(2);
      if (!clients) return;
      const [a, b] = clients as [LockManager, LockManager];
      const key = freshKey('writer');
      const writer = await a.readWrite(key).write();
      expect(await b.readWrite(key).tryRead()).toBeNull();
      expect(await b.readWrite(key).tryWrite()).toBeNull();
      await expect(b.readWrite(key).read({ waitMs: ms(200) })).rejects.toBeInstanceOf(
        LockTimeoutError,
      );
      const reading = b.readWrite(key).read({ waitMs: ms(10_000) });
      await writer.release();
      const reader = await reading;
      expect(reader.fence).toBeGreaterThan(writer.fence);
      await reader.release();
    });

    it('once a writer waits, readers that arrive after it wait behind it', async () => {
      const clients = await sharedClients(3);
      if (!clients) return;
      const [a, b, c] = clients as [LockManager, LockManager, LockManager];
      const key = freshKey('preference');
      const order: string[] = [];
      const first = await a.readWrite(key).read();
      const writing = b
        .readWrite(key)
        .write({ waitMs: ms(10_000) })
        .then((lease) => (order.push('writer'), lease));
      await queued(a, key, 1);
      expect(await c.readWrite(key).tryRead(), 'a reader passed a waiting writer').toBeNull();
      const reading = c
        .readWrite(key)
        .read({ waitMs: ms(10_000) })
        .then((lease) => (order.push('late reader'), lease));
      expect(await pendingAfter(reading, ms(150))).toBe(true);
      await first.release();
      const writer = await writing;
      expect(await pendingAfter(reading, ms(100)), 'a reader got in beside the writer').toBe(true);
      await writer.release();
      const late = await reading;
      expect(order).toEqual(['writer', 'late reader']);
      expect(late.fence).toBeGreaterThan(writer.fence);
      await late.release();
    });

    it('a writer gets in under a steady stream of overlapping readers', async () => {
      const clients = await sharedClients(4);
      if (!clients) return;
      const key = freshKey('starvation');
      let readersInside = 0;
      let readersBesideWriter = 0;
      let writerInside = false;
      let done = false;
      const readerLoop = async (locks: LockManager, offsetMs: number) => {
        await delay(offsetMs);
        while (!done) {
          await locks.readWrite(key).withRead(
            async () => {
              readersInside += 1;
              if (writerInside) readersBesideWriter += 1;
              await delay(ms(40));
              readersInside -= 1;
            },
            { waitMs: ms(20_000) },
          );
        }
      };
      const readers = clients.slice(1).map((locks, i) => readerLoop(locks, i * ms(15)));
      await delay(ms(150)); // the stream is flowing: some reader always holds the key
      const started = now();
      await clients[0]!.readWrite(key).withWrite(
        async () => {
          writerInside = true;
          expect(readersInside, 'a reader held the key beside the writer').toBe(0);
          await delay(ms(20));
          writerInside = false;
        },
        { waitMs: ms(5_000) },
      );
      const waited = now() - started;
      done = true;
      await Promise.all(readers);
      expect(readersBesideWriter).toBe(0);
      // It waits for the readers already in (each holds 40 ms), not for the stream behind it.
      expect(waited).toBeLessThan(ms(2_000));
    });

    it('withRead and withWrite renew past the TTL and release afterwards', async () => {
      const clients = await sharedClients(2);
      if (!clients) return;
      const [a, b] = clients as [LockManager, LockManager];
      const key = freshKey('renew-shared');
      const ttlMs = ms(500);
      const lost = await a.readWrite(key).withRead(
        async (lease) => {
          await delay(ttlMs * 2);
          expect(await b.readWrite(key).tryWrite()).toBeNull();
          return lease.lost;
        },
        { ttlMs },
      );
      expect(lost).toBe(false);
      const wrote = await b.readWrite(key).withWrite(
        async (lease) => {
          await delay(ttlMs * 2);
          expect(await a.readWrite(key).tryRead()).toBeNull();
          return lease.lost;
        },
        { ttlMs },
      );
      expect(wrote).toBe(false);
      expect(await a.inspect(key)).toBeNull();
    });
  });

  describe('semaphores', () => {
    it('never exceeds its limit among concurrent clients, with holders that expire and abort', async () => {
      const clients = await sharedClients(8);
      if (!clients) return;
      const key = freshKey('semaphore');
      const limit = 3;
      let inside = 0;
      let most = 0;
      let aborted = 0;
      let abandoned = 0;
      const enter = () => {
        inside += 1;
        most = Math.max(most, inside);
      };
      const holders: Promise<void>[] = [];
      await Promise.all(
        clients.map(async (locks, client) => {
          const semaphore = locks.semaphore(key, { limit });
          for (let i = 0; i < 6; i += 1) {
            const kind = (client + i) % 6;
            if (kind === 4) {
              // A waiter that gives up: its abort must leave nothing held or queued.
              const controller = new AbortController();
              setTimeout(() => controller.abort(new Error('gave up')), ms(15));
              await semaphore.acquire({ signal: controller.signal }).then(
                (lease) => lease.release(),
                () => (aborted += 1),
              );
              continue;
            }
            const lease = await semaphore.acquire({
              waitMs: ms(20_000),
              ttlMs: kind === 5 ? ms(300) : ms(10_000),
            });
            enter();
            if (kind === 5) {
              // A holder that crashes: counted inside until its permit's TTL ends.
              abandoned += 1;
              holders.push(abortedAt(lease.signal).then(() => void (inside -= 1)));
              continue;
            }
            await delay(ms(10));
            inside -= 1;
            await lease.release();
          }
        }),
      );
      await Promise.all(holders);
      // And one waiter that surely waits (every permit held) and gives up.
      const full = await Promise.all(
        Array.from({ length: limit }, () => clients[0]!.semaphore(key, { limit }).acquire()),
      );
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('gave up')), ms(50));
      await clients[1]!
        .semaphore(key, { limit })
        .acquire({ signal: controller.signal })
        .then(
          () => expect.fail('a permit beyond the limit'),
          () => (aborted += 1),
        );
      await Promise.all(full.map((lease) => lease.release()));
      await delay(ms(100)); // the store's TTL ends a drift margin after the holders' signals
      expect(most, 'more holders than permits').toBeLessThanOrEqual(limit);
      expect(most, 'the permits were never all in use').toBe(limit);
      expect(abandoned).toBeGreaterThan(0);
      expect(aborted).toBeGreaterThan(0);
      expect(await clients[0]!.inspect(key)).toBeNull();
    });

    it('a permit comes back when its holder TTL ends', async () => {
      const clients = await sharedClients(2);
      if (!clients) return;
      const [a, b] = clients as [LockManager, LockManager];
      const key = freshKey('permit-ttl');
      const crashed = await a.semaphore(key, { limit: 2 }).acquire({ ttlMs: ms(400) });
      const held = await a.semaphore(key, { limit: 2 }).acquire();
      expect(await b.semaphore(key, { limit: 2 }).tryAcquire()).toBeNull();
      const lostAt = abortedAt(crashed.signal);
      const third = await b.semaphore(key, { limit: 2 }).acquire({ waitMs: ms(10_000) });
      expect(await lostAt).toBeLessThanOrEqual(now());
      expect(third.fence).toBeGreaterThan(held.fence);
      const info = await b.inspect(key);
      expect(info?.holders).toHaveLength(2);
      expect(info?.limit).toBe(2);
      await Promise.all([held.release(), third.release()]);
    });

    it('serves waiters in arrival order (FIFO backends)', async () => {
      const locks = await sharedClient();
      if (!locks) return;
      if (!locks.backend.capabilities.fifo) {
        expect(locks.backend.capabilities.fifo).toBe(false);
        return;
      }
      const key = freshKey('semaphore-fifo');
      const semaphore = locks.semaphore(key, { limit: 2 });
      const held = [await semaphore.acquire(), await semaphore.acquire()];
      const order: number[] = [];
      const waiters: Promise<Lease>[] = [];
      for (let i = 0; i < 4; i += 1) {
        const waiter = await client();
        waiters.push(
          waiter
            .semaphore(key, { limit: 2 })
            .acquire({ waitMs: ms(10_000) })
            .then((lease) => (order.push(i), lease)),
        );
        await queued(locks, key, i + 1);
      }
      // One release at a time, each grant seen before the next release: two grants in flight to
      // two clients at once may reach them in either order, whatever order the store chose.
      const grantsSeen = async (count: number) => {
        const until = Date.now() + ms(10_000);
        while (order.length < count && Date.now() < until) await delay(5);
      };
      await held[0]!.release();
      await grantsSeen(1);
      await held[1]!.release();
      await grantsSeen(2);
      await (await waiters[0]!).release();
      await grantsSeen(3);
      await (await waiters[1]!).release();
      await grantsSeen(4);
      await Promise.all(waiters.slice(2).map(async (w) => (await w).release()));
      expect(order).toEqual([0, 1, 2, 3]);
    });

    it('refuses a second limit on a key with LimitMismatchError; a new limit works once it is free', async () => {
      const clients = await sharedClients(2);
      if (!clients) return;
      const [a, b] = clients as [LockManager, LockManager];
      const key = freshKey('limits');
      const permit = await a.semaphore(key, { limit: 3 }).acquire();
      const mismatch = await b
        .semaphore(key, { limit: 4 })
        .acquire({ waitMs: ms(1_000) })
        .catch((e: unknown) => e);
      expect(mismatch).toBeInstanceOf(LimitMismatchError);
      expect(mismatch).toMatchObject({ key, limit: 4, heldLimit: 3 });
      await expect(b.semaphore(key, { limit: 4 }).tryAcquire()).rejects.toBeInstanceOf(
        LimitMismatchError,
      );
      await expect(b.readWrite(key).tryRead()).rejects.toBeInstanceOf(LimitMismatchError);
      // The mutex is not a shared holder: it waits for the permits like a writer.
      await expect(b.acquire(key, { waitMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
      await permit.release();
      const after = await b.semaphore(key, { limit: 4 }).acquire({ waitMs: 0 });
      expect((await b.inspect(key))?.limit).toBe(4);
      await after.release();
    });

    it('rejects a bad limit with InvalidArgumentError naming "limit"', async () => {
      const locks = await sharedClient();
      if (!locks) return;
      for (const limit of [0, -1, 1.5, Number.NaN, Infinity, '3' as unknown as number]) {
        expect(() => locks.semaphore('k', { limit })).toThrow(InvalidArgumentError);
      }
      expect(() => locks.semaphore('k', undefined as never)).toThrow(InvalidArgumentError);
    });

    it('withPermit renews past the TTL and releases afterwards', async () => {
      const clients = await sharedClients(2);
      if (!clients) return;
      const [a, b] = clients as [LockManager, LockManager];
      const key = freshKey('with-permit');
      const ttlMs = ms(500);
      const lost = await a.semaphore(key, { limit: 1 }).withPermit(
        async (lease) => {
          await delay(ttlMs * 2);
          expect(await b.semaphore(key, { limit: 1 }).tryAcquire()).toBeNull();
          return lease.lost;
        },
        { ttlMs },
      );
      expect(lost).toBe(false);
      expect(await b.inspect(key)).toBeNull();
    });

    if (options.processBackendModule) {
      const processes = options.processes ?? 4;
      it(`never exceeds its limit among ${processes} OS processes`, async () => {
        const locks = await sharedClient();
        if (!locks) return;
        const dir = mkdtempSync(join(tmpdir(), 'distlock-conformance-'));
        try {
          const iterations = 10;
          const limit = 2;
          const { results, intervals } = await runContenders(
            options.processBackendModule!,
            processes,
            {
              key: freshKey('semaphore-processes'),
              iterations,
              out: join(dir, 'intervals.jsonl'),
              env: { DISTLOCK_CONTENDER_LIMIT: String(limit) },
            },
          );
          for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
          expect(intervals).toHaveLength(processes * iterations);
          expect(maxOverlap(intervals), 'more holders than permits').toBeLessThanOrEqual(limit);
          expect(new Set(intervals.map((i) => i.fence)).size, 'a fence was issued twice').toBe(
            intervals.length,
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }, 120_000);
    }
  });

  describe('shared holdings', () => {
    it('fences strictly increase per key across readers, writers and expiries', async () => {
      const clients = await sharedClients(3);
      if (!clients) return;
      const key = freshKey('shared-fences');
      const granted: bigint[] = [];
      const rw = (i: number) => clients[i % 3]!.readWrite(key);
      const r1 = await rw(0).read();
      const r2 = await rw(1).read();
      granted.push(r1.fence, r2.fence);
      await Promise.all([r1.release(), r2.release()]);
      const w1 = await rw(2).write();
      granted.push(w1.fence);
      await w1.release();
      const abandoned = await rw(0).read({ ttlMs: ms(200) });
      granted.push(abandoned.fence);
      const w2 = await rw(1).write({ waitMs: ms(5_000) }); // after the abandoned reader expired
      granted.push(w2.fence);
      await w2.release();
      const r3 = await rw(2).read();
      granted.push(r3.fence);
      await r3.release();
      for (let i = 1; i < granted.length; i += 1)
        expect(granted[i]).toBeGreaterThan(granted[i - 1]!);
    });

    it('an abort or a deadline leaves no shared waiter held or queued', async () => {
      const clients = await sharedClients(2);
      if (!clients) return;
      const [a, b] = clients as [LockManager, LockManager];
      const key = freshKey('shared-abort');
      const writer = await a.readWrite(key).write();
      const controller = new AbortController();
      const reason = new Error('caller gave up');
      setTimeout(() => controller.abort(reason), ms(100));
      await expect(
        b.readWrite(key).read({ waitMs: ms(10_000), signal: controller.signal }),
      ).rejects.toBe(reason);
      await expect(b.readWrite(key).read({ waitMs: ms(200) })).rejects.toBeInstanceOf(
        LockTimeoutError,
      );
      await writer.release();
      await delay(ms(50));
      expect(await b.inspect(key), 'a waiter that gave up holds the key').toBeNull();
      const again = await b.readWrite(key).tryWrite();
      expect(again, 'a waiter that gave up blocks the key').not.toBeNull();
      expect((await b.inspect(key))?.waiters ?? 0).toBe(0);
      await again!.release();

      const semaphoreKey = freshKey('permit-abort');
      const only = await a.semaphore(semaphoreKey, { limit: 1 }).acquire();
      await expect(
        b.semaphore(semaphoreKey, { limit: 1 }).acquire({ waitMs: ms(200) }),
      ).rejects.toBeInstanceOf(LockTimeoutError);
      await only.release();
      const next = await b.semaphore(semaphoreKey, { limit: 1 }).tryAcquire();
      expect(next).not.toBeNull();
      await next!.release();
    });

    it('inspect and list show every holder of a shared key', async () => {
      const locks = await sharedClient();
      if (!locks) return;
      const base = freshKey('shared-list');
      const permits = await Promise.all([
        locks.semaphore(`${base}/s`, { limit: 3 }).acquire({ ttlMs: ms(5_000) }),
        locks.semaphore(`${base}/s`, { limit: 3 }).acquire({ ttlMs: ms(5_000) }),
      ]);
      const info = await locks.inspect(`${base}/s`);
      expect(info).toMatchObject({ key: `${base}/s`, mode: 'shared', limit: 3 });
      expect(info!.holders.map((h) => h.token).sort()).toEqual(permits.map((p) => p.token).sort());
      for (const holder of info!.holders) {
        expect(holder.mode).toBe('shared');
        if (holder.remainingMs !== null) {
          expect(holder.remainingMs).toBeGreaterThan(0);
          expect(holder.remainingMs).toBeLessThanOrEqual(ms(5_000));
        }
      }
      if (locks.backend.list) {
        const listed = await locks.list(`${base}/`);
        expect(listed).toHaveLength(1);
        expect(listed[0]!.holders).toHaveLength(2);
      }
      await Promise.all(permits.map((p) => p.release()));
    });

    it('a shared holding is released by token from another client, and a lost one is signalled', async () => {
      const clients = await sharedClients(2);
      if (!clients) return;
      const [a, b] = clients as [LockManager, LockManager];
      const key = freshKey('shared-token');
      const r1 = await a.readWrite(key).read();
      const r2 = await a.readWrite(key).read();
      expect(await b.release(key, 'not-a-token')).toBe('not-owner');
      expect(await b.release(key, r1.token)).toBe('released');
      expect((await b.inspect(key))?.holders.map((h) => h.token)).toEqual([r2.token]);
      if (b.backend.forceRelease) {
        expect(await b.forceRelease(key)).toBe(true);
        await expect(r2.extend()).rejects.toBeInstanceOf(LockLostError);
        expect(r2.lost).toBe(true);
      } else {
        await r2.release();
      }
      expect(await b.inspect(key)).toBeNull();
    });
  });
}
