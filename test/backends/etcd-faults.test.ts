/**
 * The etcd backend on a real 3-member etcd cluster under faults: the leader killed while a lock
 * is held and others wait, a holder process frozen (SIGSTOP) past its session TTL, a waiter
 * process killed. Every test is bounded in time; the whole file runs in well under 90 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import type { LockBackend } from '../../src/core/backend.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import type { Lease } from '../../src/core/lease.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { killAndWait, waitUntil } from '../harness/process.js';

const childScript = fileURLToPath(new URL('../fixtures/etcd-child.ts', import.meta.url));
/** Short sessions make the faults quick to observe (etcd's minimum lease TTL is 2 s). */
const SESSION_TTL_MS = 2_000;

let cluster: EtcdServer;
const managers: LockManager[] = [];
const children: ChildProcess[] = [];
let keyCounter = 0;
const freshKey = (label: string) => `etcd-faults/${label}-${process.pid}-${(keyCounter += 1)}`;

beforeAll(async () => {
  cluster = await startEtcd(3);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(children.map((child) => killAndWait(child)));
  await Promise.allSettled(managers.map((m) => m.close()));
  await cluster?.stop();
});

function client(sessionTtlMs = SESSION_TTL_MS, backendOut?: (b: LockBackend) => void): LockManager {
  const backend = etcdBackend({ url: cluster.url, sessionTtlMs, operationTimeoutMs: 2_000 });
  backendOut?.(backend);
  const locks = createLocks({ backend, ttlMs: 60_000, waitMs: 30_000 });
  managers.push(locks);
  return locks;
}

interface ChildLine {
  event: 'session' | 'acquired' | 'lost';
  type?: string;
  deadline?: number | null;
  fence?: string;
  reason?: string;
  at: number;
}

/** Spawn a child that takes `key` (mode `hold`) and collect its JSON lines. */
function spawnChild(key: string): {
  child: ChildProcess;
  lines: ChildLine[];
  stderr: () => string;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
    env: {
      ...process.env,
      DISTLOCK_ETCD_URL: cluster.url,
      DISTLOCK_ETCD_SESSION_TTL_MS: String(SESSION_TTL_MS),
      DISTLOCK_CHILD_KEY: key,
      DISTLOCK_CHILD_MODE: 'hold',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: ChildLine[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, newline)) as ChildLine);
      buffer = buffer.slice(newline + 1);
    }
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  return { child, lines, stderr: () => stderr };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('etcd backend on a 3-member cluster', () => {
  it('serves waiters in arrival order, one wake-up per release', async () => {
    const key = freshKey('fifo');
    const holder = client();
    const first = await holder.acquire(key);
    const order: number[] = [];
    const waiting: Promise<void>[] = [];
    for (let i = 0; i < 6; i += 1) {
      const locks = client();
      waiting.push(
        locks.acquire(key).then(async (lease) => {
          order.push(i);
          await lease.release();
        }),
      );
      // Arrival order is the order in which entries reach etcd: wait until this one has.
      await waitUntil(
        `waiter ${i} queued`,
        async () => (await holder.inspect(key))?.waiters === i + 1,
        10_000,
      );
    }
    await first.release();
    await Promise.all(waiting);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await holder.inspect(key)).toBeNull();
  }, 30_000);

  it('a frozen holder (SIGSTOP past its session TTL) is signalled lost no later than the next holder gets the lock, with a lower fence', async () => {
    const key = freshKey('sigstop');
    const { child, lines, stderr } = spawnChild(key);
    await waitUntil(
      'the child to hold the lock',
      () => lines.some((l) => l.event === 'acquired'),
      20_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${stderr()}`);
    });
    const childFence = BigInt(lines.find((l) => l.event === 'acquired')!.fence!);
    // Let a few keep-alives go through so the session deadline has moved since the grant.
    await waitUntil('a keep-alive', () => lines.some((l) => l.type === 'kept-alive'), 5_000);

    const waiter = client();
    const next = waiter.acquire(key, { waitMs: 20_000 });
    await waitUntil(
      'the waiter queued',
      async () => (await waiter.inspect(key))?.waiters === 1,
      5_000,
    );

    const stoppedAt = Date.now();
    child.kill('SIGSTOP');
    await delay(200); // drain what the child wrote before it stopped
    const deadlines = lines.filter((l) => l.type === 'kept-alive' || l.type === 'granted');
    const childDeadline = Math.max(...deadlines.map((l) => l.deadline ?? 0));

    let lease: Lease;
    try {
      lease = await next;
    } finally {
      child.kill('SIGCONT');
    }
    const acquiredAt = Date.now();
    // The child would have aborted its lease by `childDeadline` had it been running: strictly
    // before etcd expired its session and let the waiter in.
    expect(childDeadline).toBeGreaterThan(stoppedAt);
    expect(acquiredAt).toBeGreaterThanOrEqual(childDeadline);
    expect(lease.fence).toBeGreaterThan(childFence);

    // Resumed, the child learns at once that its lease is gone: the session could not be kept.
    await waitUntil(
      'the child to report its loss',
      () => lines.some((l) => l.event === 'lost'),
      5_000,
    );
    const lost = lines.find((l) => l.event === 'lost')!;
    expect(lost.reason).toBe('unreachable');
    expect(lost.at - acquiredAt).toBeLessThan(3_000);
    await lease.release();
    await killAndWait(child);
  }, 40_000);

  it('a killed waiter process leaves the queue when its session expires, and the queue moves on', async () => {
    const key = freshKey('dead-waiter');
    const holder = client();
    const held = await holder.acquire(key);
    const { child, lines } = spawnChild(key);
    await waitUntil(
      'the child queued',
      async () => (await holder.inspect(key))?.waiters === 1,
      20_000,
    );
    const behind = client();
    const next = behind.acquire(key, { waitMs: 20_000 });
    await waitUntil(
      'a second waiter queued',
      async () => (await holder.inspect(key))?.waiters === 2,
      5_000,
    );

    await killAndWait(child);
    const killedAt = Date.now();
    await waitUntil(
      "the dead waiter's entry to expire with its session",
      async () => (await holder.inspect(key))?.waiters === 1,
      SESSION_TTL_MS + 5_000,
    );
    expect(Date.now() - killedAt).toBeLessThan(SESSION_TTL_MS + 5_000);
    await held.release();
    const lease = await next;
    expect(lease.fence).toBeGreaterThan(held.fence);
    expect(lines.some((l) => l.event === 'acquired')).toBe(false);
    await lease.release();
  }, 40_000);

  it('survives the leader being killed while a lock is held and others wait: never two holders, waiters progress after the election', async () => {
    const key = freshKey('leader');
    // A session longer than an election: the holder keeps its lock through the leader change.
    const sessionTtlMs = 6_000;
    const holder = client(sessionTtlMs);
    const held = await holder.acquire(key, { ttlMs: 60_000 });
    let inside = 0;
    let overlaps = 0;
    const intervals: Array<{ fence: bigint; start: number; end: number }> = [];
    const waiters = Array.from({ length: 4 }, () => client(sessionTtlMs));
    const done = waiters.map((locks) =>
      locks.withLock(
        key,
        async (lease) => {
          inside += 1;
          if (inside > 1) overlaps += 1;
          const start = Date.now();
          await delay(20);
          intervals.push({ fence: lease.fence, start, end: Date.now() });
          inside -= 1;
        },
        { waitMs: 40_000 },
      ),
    );
    await waitUntil(
      'all waiters queued',
      async () => (await holder.inspect(key))?.waiters === 4,
      10_000,
    );

    const leader = await cluster.leader();
    await killAndWait(leader.process);
    const killedAt = Date.now();
    const newLeader = await cluster.leader();
    expect(newLeader.name).not.toBe(leader.name);

    // The holder kept its lock through the election; nobody else got it.
    expect(held.lost).toBe(false);
    expect(intervals).toEqual([]);
    await waitUntil(
      'the holder to be seen through the new leader',
      async () => (await holder.inspect(key))?.token === held.token,
      10_000,
    );
    const releasedAt = Date.now();
    await held.release();
    await Promise.all(done);
    const finishedAt = Date.now();

    expect(overlaps).toBe(0);
    expect(intervals).toHaveLength(4);
    const fences = [held.fence, ...intervals.map((i) => i.fence)];
    for (let i = 1; i < fences.length; i += 1) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
    expect(intervals[0]!.start).toBeGreaterThanOrEqual(releasedAt);
    for (let i = 1; i < intervals.length; i += 1) {
      expect(intervals[i]!.start).toBeGreaterThanOrEqual(intervals[i - 1]!.end);
    }
    expect(finishedAt - killedAt).toBeLessThan(30_000);
    await cluster.restart(leader);
  }, 60_000);
});
