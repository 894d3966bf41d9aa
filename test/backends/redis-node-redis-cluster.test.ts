/**
 * The Redis backend over a node-redis cluster client (`createCluster()` of the `redis` package) on
 * a 3-master Redis Cluster: the whole conformance suite (a cluster client per simulated client, and
 * in the suite's child processes), then a master paused and a master killed while a lease is held.
 * The killing test runs last: the cluster has no replicas, so it stays down afterwards.
 */
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import { lockKeys } from '../../src/backends/redis/keys.js';
import type { LockBackend } from '../../src/core/backend.js';
import {
  BackendUnavailableError,
  LockError,
  LockLostError,
  type LockError as LockErrorType,
} from '../../src/core/errors.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { rootCause } from '../../src/core/redact.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { nodeRedisClusterBackend } from '../fixtures/redis-backend.js';
import { waitUntil } from '../harness/process.js';
import { startRedisCluster, type RedisCluster } from '../harness/redis.js';

const fixture = fileURLToPath(new URL('../fixtures/redis-backend.ts', import.meta.url));

let cluster: RedisCluster;
const backends: LockBackend[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  // Read by the fixture in the suite's child processes.
  process.env.DISTLOCK_REDIS_CLUSTER_NODES = nodeList().join(',');
  process.env.DISTLOCK_REDIS_CLIENT_LIBRARY = 'node-redis';
  const probe = createCluster({
    rootNodes: nodeList().map((node) => ({ url: `redis://${node}` })),
  });
  probe.on('error', () => undefined);
  await probe.connect();
  try {
    for (const { master } of probe.slots) masterPortOfSlot.push(master.port);
  } finally {
    probe.destroy();
  }
});
afterAll(async () => {
  await Promise.allSettled(backends.map((backend) => backend.close()));
  await cluster?.stop();
});

function nodeList(): string[] {
  return cluster.nodes.map(({ host, port }) => `${host}:${port}`);
}

runConformanceSuite({
  name: 'redis-cluster (node-redis)',
  createBackend: () => nodeRedisClusterBackend(nodeList()),
  processBackendModule: fixture,
  // The servers have no such user: AUTH is refused, so the cluster's connect fails, its errors
  // (followed by the backend from the start) carrying whatever node-redis put in them.
  createBackendWithSecret: async () => {
    const secret = 'Secr3tPw-node-redis-cluster';
    const client = createCluster({
      rootNodes: nodeList().map((node) => ({ url: `redis://nobody:${secret}@${node}` })),
    });
    const backend = redisBackend({ client });
    backends.push(backend);
    await client.connect().catch(() => undefined);
    return { backend, secret };
  },
});

let keyCounter = 0;
const freshKey = (label: string) => `node-redis-cluster/${label}-${(keyCounter += 1)}`;

/** A lock manager over its own node-redis cluster client, closed after the file. */
async function manager(options: { commandTimeoutMs?: number } = {}): Promise<LockManager> {
  const backend = await nodeRedisClusterBackend(nodeList(), options);
  backends.push(backend);
  return createLocks({ backend, ttlMs: 10_000, waitMs: 10_000 });
}

/** Port of the master serving each slot, read once the cluster is up (it never reshards here). */
const masterPortOfSlot: number[] = [];

/** The index (in `cluster.ports`) of the master that serves `key`'s lock. */
function masterOf(key: string): number {
  return cluster.ports.indexOf(masterPortOfSlot[calculateSlot(lockKeys('distlock:', key).lock)]!);
}

/** A fresh key whose lock is served by master `index`. */
function freshKeyOn(index: number, label: string): string {
  for (;;) {
    const key = freshKey(label);
    if (masterOf(key) === index) return key;
  }
}

/** A fresh key whose lock is served by another master than `index`. */
function freshKeyOff(index: number, label: string): string {
  for (;;) {
    const key = freshKey(label);
    if (masterOf(key) !== index) return key;
  }
}

describe('redis over a node-redis cluster', () => {
  it('exposes the cluster passed in and leaves it open; refuses waitForReplicas (WAIT on one of many connections says nothing), naming it', async () => {
    const client = createCluster({
      rootNodes: nodeList().map((node) => ({ url: `redis://${node}` })),
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const backend = redisBackend({ client });
      expect(backend.client, "the backend exposes the user's cluster itself").toBe(client);
      await backend.close();
      expect(client.isOpen, 'and leaves it open').toBe(true);
      expect(() => redisBackend({ client, waitForReplicas: { replicas: 1 } })).toThrow(
        /waitForReplicas/,
      );
    } finally {
      client.destroy();
    }
  });

  it('a paused master (SIGSTOP): its calls fail typed by the command timeout, the others work, all work once it resumes', async () => {
    const locks = await manager({ commandTimeoutMs: 500 });
    const key = freshKey('paused');
    const paused = masterOf(key);
    const other = freshKeyOff(paused, 'paused-other');
    const lease = await locks.acquire(key, { ttlMs: 5_000 });
    const lost = new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
    );
    cluster.processes[paused]!.kill('SIGSTOP');
    try {
      const started = performance.now();
      const error = await locks
        .tryAcquire(freshKeyOn(paused, 'paused-same'))
        .catch((e: unknown) => e);
      const tookMs = performance.now() - started;
      expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
      expect((error as LockErrorType).retryable).toBe(true);
      expect(tookMs).toBeGreaterThanOrEqual(400);
      expect(tookMs).toBeLessThan(500 + 2_000);
      // Another master's slots are unaffected.
      const elsewhere = await locks.acquire(other, { waitMs: 0 });
      expect(await elsewhere.release()).toBe('released');
      // The holder cannot renew: its signal fires by its deadline.
      const lostAt = await lost;
      expect(lostAt).toBeLessThanOrEqual(lease.expiresAt + 500); // timers may run late when loaded
      expect(lease.signal.reason).toBeInstanceOf(LockLostError);
    } finally {
      cluster.processes[paused]!.kill('SIGCONT');
    }
    await waitUntil(
      'an acquire on the resumed master',
      async () => {
        const again = await locks.acquire(key, { waitMs: 0 }).catch(() => undefined);
        return again !== undefined && (await again.release()) === 'released';
      },
      10_000,
      100,
    );
  }, 30_000);

  // Last: the cluster has no replica to fail over to, so it stays down.
  it('a master killed while a lease is held: the signal fires by the deadline, calls fail typed and fast, with the root cause', async () => {
    const locks = await manager();
    const key = freshKey('killed');
    const killed = masterOf(key);
    const lease = await locks.acquire(key, { ttlMs: 1_500 });
    // Its rejection comes while the master is down, before the end of the test reads it: handled
    // from the start (else an unhandled rejection).
    const waiting = (await manager()).acquire(key, { waitMs: 2_500 }).catch((e: unknown) => e);
    await waitUntil(
      `a waiter on ${key}`,
      async () => (await locks.inspect(key))?.waiters === 1,
      10_000,
      10,
    );
    const lost = new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
    );
    const child = cluster.processes[killed]!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const lostAt = await lost;
    expect(lostAt).toBeLessThanOrEqual(lease.expiresAt + 500); // timers may run late when loaded
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);

    // Once the client has seen the master go, a call on its slots fails at once.
    let error: unknown;
    let tookMs = 0;
    await waitUntil(
      'a fast typed failure',
      async () => {
        const started = performance.now();
        error = await locks.tryAcquire(freshKeyOn(killed, 'killed-same')).catch((e: unknown) => e);
        tookMs = performance.now() - started;
        return error instanceof BackendUnavailableError && tookMs < 1_000;
      },
      10_000,
      100,
    );
    expect((error as LockErrorType).retryable).toBe(true);
    // Its root cause is the master's own connection failure.
    expect((rootCause(error) as Error).message).toMatch(/ECONNREFUSED|Socket closed/);
    await expect(lease.extend()).rejects.toBeInstanceOf(LockError);
    const waited = await waiting;
    expect(waited).toBeInstanceOf(LockError);
  }, 30_000);
});
