/**
 * The etcd backend's read-write locks and semaphores beyond the conformance suite: waiters are
 * woken by watches on the right entries (the periodic re-check is turned off, so a missed wake-up
 * would time out), a batch of readers follows a writer at once, a killed process's share comes
 * back with its session lease, the limit check sees waiters, and `inspect` tells this backend's
 * holders (time left) from others' (unknown).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import { LimitMismatchError, LockLostError } from '../../src/core/errors.js';
import type { Lease } from '../../src/core/lease.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { killAndWait, waitUntil } from '../harness/process.js';

const childScript = fileURLToPath(new URL('../fixtures/etcd-child.ts', import.meta.url));
let server: EtcdServer;
const managers: LockManager[] = [];
const children: ChildProcess[] = [];
let counter = 0;
const freshKey = (label: string) => `etcd-kinds/${label}-${process.pid}-${(counter += 1)}`;

beforeAll(async () => {
  server = await startEtcd(1);
}, 60_000);
afterAll(async () => {
  await Promise.allSettled(children.map((child) => killAndWait(child)));
  await Promise.allSettled(managers.map((m) => m.close()));
  await server?.stop();
});

/**
 * A client whose waits are ended only by watch events: its re-check by range comes after a
 * minute at the earliest (half of `recheckMs`), far past every wait bound below.
 */
function client(): LockManager {
  const locks = createLocks({
    backend: etcdBackend({ url: server.url, recheckMs: 120_000 }),
    ttlMs: 30_000,
    waitMs: 20_000,
  });
  managers.push(locks);
  return locks;
}

/** Wait until `key` has `count` waiters. */
function queued(probe: LockManager, key: string, count: number): Promise<void> {
  return waitUntil(
    `${count} waiters on ${key}`,
    async () => (await probe.inspect(key))?.waiters === count,
    10_000,
  );
}

describe('etcd kinds: wake-ups', () => {
  it('a full semaphore lets a waiter in when any holder leaves, not only the oldest', async () => {
    const [a, b, c, d] = [client(), client(), client(), client()];
    const key = freshKey('any-holder');
    const held = [
      await a.semaphore(key, { limit: 3 }).acquire(),
      await b.semaphore(key, { limit: 3 }).acquire(),
      await c.semaphore(key, { limit: 3 }).acquire(),
    ];
    const waiting = d.semaphore(key, { limit: 3 }).acquire();
    await queued(a, key, 1);
    await held[1]!.release(); // the middle holder
    const permit = await waiting;
    expect(permit.fence).toBeGreaterThan(held[2]!.fence);
    expect((await a.inspect(key))?.holders.map((h) => h.token)).toEqual([
      held[0]!.token,
      held[2]!.token,
      permit.token,
    ]);
    await Promise.all([held[0]!, held[2]!, permit].map((lease) => lease.release()));
  });

  it('a waiter with more holders ahead than it watches by name is woken by any of them', async () => {
    const [a, b, c] = [client(), client(), client()];
    const key = freshKey('wide');
    const limit = 20; // more than SHARED_WATCH_MOST: one watch of the whole directory
    const held: Lease[] = [];
    for (let i = 0; i < limit; i += 1) {
      held.push(await (i % 2 ? a : b).semaphore(key, { limit }).acquire());
    }
    const waiting = c.semaphore(key, { limit }).acquire();
    await queued(a, key, 1);
    const leaving = held.splice(limit - 2, 1)[0]!; // one of the newest holders
    await leaving.release();
    const permit = await waiting;
    expect((await a.inspect(key))?.holders).toHaveLength(limit);
    await Promise.all([...held, permit].map((lease) => lease.release()));
    expect(await a.inspect(key)).toBeNull();
  });

  it('a waiter deeper in a semaphore queue moves up when a waiter ahead gives up', async () => {
    const [a, b, c] = [client(), client(), client()];
    const key = freshKey('deeper');
    const holder = await a.semaphore(key, { limit: 1 }).acquire();
    const controller = new AbortController();
    const first = b.semaphore(key, { limit: 1 }).acquire({ signal: controller.signal });
    first.catch(() => undefined);
    await queued(a, key, 1);
    const second = c.semaphore(key, { limit: 1 }).acquire();
    await queued(a, key, 2);
    controller.abort(new Error('gave up'));
    await expect(first).rejects.toThrow('gave up');
    await queued(a, key, 1);
    await holder.release();
    const lease = await second;
    expect(lease.fence).toBeGreaterThan(holder.fence);
    await lease.release();
    expect(await a.inspect(key)).toBeNull();
  });

  it("a writer's release lets every reader queued behind it in at once", async () => {
    const [w, ...readers] = [client(), client(), client(), client()];
    const key = freshKey('batch');
    const writer = await w.readWrite(key).write();
    const waiting: Promise<Lease>[] = [];
    for (const [i, locks] of readers.entries()) {
      waiting.push(locks.readWrite(key).read());
      await queued(w, key, i + 1);
    }
    await writer.release();
    const granted = await Promise.all(waiting);
    const info = await w.inspect(key);
    expect(info?.mode).toBe('shared');
    expect(info?.holders).toHaveLength(3);
    expect(info?.waiters).toBe(0);
    for (const lease of granted) expect(lease.fence).toBeGreaterThan(writer.fence);
    await Promise.all(granted.map((lease) => lease.release()));
  });

  it('a reader behind a waiting writer gets in beside the readers when that writer gives up', async () => {
    const [a, b, c] = [client(), client(), client()];
    const key = freshKey('writer-gives-up');
    const reader = await a.readWrite(key).read();
    const controller = new AbortController();
    const writing = b.readWrite(key).write({ signal: controller.signal });
    writing.catch(() => undefined);
    await queued(a, key, 1);
    const late = c.readWrite(key).read();
    await queued(a, key, 2);
    controller.abort(new Error('writer gave up'));
    await expect(writing).rejects.toThrow('writer gave up');
    const second = await late; // while the first reader still holds
    expect((await a.inspect(key))?.holders.map((h) => h.token)).toEqual([
      reader.token,
      second.token,
    ]);
    await Promise.all([reader.release(), second.release()]);
  });
});

describe('etcd kinds: crashed holders', () => {
  it("a killed process's read share and permit come back when its session lease ends", async () => {
    const sessionTtlMs = 2_000;
    for (const kind of ['read', 'permit:1']) {
      const key = freshKey(`killed-${kind.replace(':', '-')}`);
      const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
        env: {
          ...process.env,
          DISTLOCK_ETCD_URL: server.url,
          DISTLOCK_ETCD_SESSION_TTL_MS: String(sessionTtlMs),
          DISTLOCK_CHILD_KEY: key,
          DISTLOCK_CHILD_KIND: kind,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await waitUntil(`the child holds ${key}`, () => out.includes('"acquired"'), 20_000);
      const locks = client();
      const info = await locks.inspect(key);
      expect(info?.mode).toBe('shared');
      expect(info?.limit).toBe(kind === 'read' ? Infinity : 1);
      // A writer waits for the dead holder's entry to go.
      const writing = locks.readWrite(key).write({ waitMs: 20_000 });
      await queued(locks, key, 1);
      await killAndWait(child);
      const killedAt = Date.now();
      const writer = await writing;
      // Its lease's TTL (at most one keep-alive interval more) and etcd's 500 ms expiry check.
      expect(Date.now() - killedAt).toBeLessThan(sessionTtlMs + 3_000);
      await writer.release();
      expect(await locks.inspect(key)).toBeNull();
    }
  }, 60_000);
});

describe('etcd kinds: limits and inspect', () => {
  it('refuses a limit that differs from a waiting permit’s, behind a writer', async () => {
    const [a, b, c] = [client(), client(), client()];
    const key = freshKey('waiting-limit');
    const writer = await a.readWrite(key).write();
    const waiting = b.semaphore(key, { limit: 2 }).acquire();
    await queued(a, key, 1);
    const mismatch = await c
      .semaphore(key, { limit: 3 })
      .acquire()
      .catch((e: unknown) => e);
    expect(mismatch).toBeInstanceOf(LimitMismatchError);
    expect(mismatch).toMatchObject({ key, limit: 3, heldLimit: 2 });
    await expect(c.readWrite(key).read({ waitMs: 1_000 })).rejects.toBeInstanceOf(
      LimitMismatchError,
    );
    // The refused requests left nothing queued.
    expect((await a.inspect(key))?.waiters).toBe(1);
    await writer.release();
    const permit = await waiting;
    await permit.release();
  });

  it("shows the time left of this backend's holders, and none of another's", async () => {
    const [a, b] = [client(), client()];
    const key = freshKey('remaining');
    const mine = await a.readWrite(key).read({ ttlMs: 5_000 });
    const theirs = await b.readWrite(key).read({ ttlMs: 5_000 });
    const info = await a.inspect(key);
    expect(info?.holders.map((h) => h.token)).toEqual([mine.token, theirs.token]);
    const [own, other] = info!.holders;
    expect(own!.remainingMs).toBeGreaterThan(0);
    expect(own!.remainingMs).toBeLessThanOrEqual(5_000);
    expect(other!.remainingMs).toBeNull();
    expect(info).toMatchObject({ token: theirs.token, fence: theirs.fence, limit: Infinity });
    // Released by token from here: its holder learns of it at its next extend.
    expect(await a.release(key, theirs.token)).toBe('released');
    await expect(theirs.extend()).rejects.toBeInstanceOf(LockLostError);
    await mine.release();
  });
});
