/**
 * The etcd backend through real failures of its own server: etcd killed and restarted on the same
 * data directory while locks are held, released, closed and waited for; and a holder process
 * SIGKILLed, whose lock must come free at its `ttlMs`, not later.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { killAndWait, waitUntil } from '../harness/process.js';

const childScript = fileURLToPath(new URL('../fixtures/etcd-child.ts', import.meta.url));
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const servers: EtcdServer[] = [];
const managers: LockManager[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  await Promise.allSettled(children.map((child) => killAndWait(child)));
  await Promise.allSettled(managers.map((m) => m.close()));
  await Promise.allSettled(servers.map((s) => s.stop()));
});

async function lone(): Promise<EtcdServer> {
  const server = await startEtcd(1);
  servers.push(server);
  return server;
}

function manager(url: string, ttlMs = 30_000): LockManager {
  const locks = createLocks({ backend: etcdBackend({ url }), ttlMs, waitMs: 15_000 });
  managers.push(locks);
  return locks;
}

/** How many keys are stored under `prefix`. */
async function keysUnder(probe: Etcd3, prefix: string): Promise<number> {
  return (await probe.getAll().prefix(prefix).keys()).length;
}

describe('etcd killed and restarted ~3 s later on the same data directory', () => {
  it('a release and a close made during the outage go through once it is back; waiters get the lock promptly', async () => {
    const etcd = await lone();
    const member = etcd.members[0]!;
    const probe = new Etcd3({ hosts: etcd.endpoints.map((e) => `http://${e}`) });
    try {
      const holder = manager(etcd.url);
      const closer = manager(etcd.url);
      const later = manager(etcd.url);
      const held = await holder.acquire('outage/k');
      await closer.acquire('outage/closed');
      const afterRestart = await later.acquire('outage/later');
      // Four waiters, each with its own connection and session, queued behind the holder.
      const waiters = [1, 2, 3, 4].map(() => manager(etcd.url));
      const granted: number[] = [];
      const done = waiters.map((locks) =>
        locks.withLock('outage/k', () => void granted.push(Date.now()), { waitMs: 15_000 }),
      );
      await waitUntil('4 waiters', async () => (await holder.inspect('outage/k'))?.waiters === 4);

      await killAndWait(member.process);
      await delay(500);
      const releasing = held.release();
      const closing = closer.close();
      releasing.catch(() => undefined);
      closing.catch(() => undefined);
      await delay(2_500);
      await etcd.restart(member);
      const restartedAt = Date.now();

      // Released and revoked through the outage, neither failing nor waiting for a TTL.
      expect(await releasing).toBe('released');
      await closing;
      expect(await keysUnder(probe, 'outage/closed/')).toBe(0);
      // A release asked for once etcd is back goes through at once (no open circuit).
      expect(await afterRestart.release()).toBe('released');
      expect(Date.now() - restartedAt).toBeLessThan(5_000);

      await Promise.all(done);
      expect(granted).toHaveLength(4);
      // Promptly: the first waiter well within the 30 s TTL the holder's entry lived under.
      expect(granted[0]! - restartedAt).toBeLessThan(5_000);
      expect(await keysUnder(probe, 'outage/')).toBe(0);
    } finally {
      probe.close();
    }
  }, 60_000);
});

describe('a SIGKILLed holder process', () => {
  it('loses its lock at its ttlMs (2 s, a whole second), not at a longer session TTL', async () => {
    const etcd = await lone();
    const key = 'crash/k';
    const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
      env: {
        ...process.env,
        DISTLOCK_ETCD_URL: etcd.url,
        DISTLOCK_CHILD_KEY: key,
        DISTLOCK_CHILD_TTL_MS: '2000',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await waitUntil('the child to hold the lock', () => out.includes('"acquired"'), 20_000);
    // Let renewals and keep-alives run for a while: the lease is not fresh at the kill.
    await delay(1_500);

    const waiter = manager(etcd.url);
    const next = waiter.acquire(key, { waitMs: 20_000 });
    await waitUntil('queued', async () => (await waiter.inspect(key))?.waiters === 1);
    await killAndWait(child);
    const killedAt = Date.now();
    const lease = await next;
    const freedAfter = Date.now() - killedAt;
    // ttlMs (2 s, already whole seconds) + etcd's expiry check (every 500 ms) + slack.
    expect(freedAfter).toBeLessThan(2_000 + 1_500);
    await lease.release();
  }, 40_000);
});
