/**
 * The Redlock backend node by node, on five real redis-server processes: which subsets of held or
 * down nodes still grant, nodes killed while held, a stalled (SIGSTOPped) node, a node restarted
 * without persistence while held (the hazard, and the restart guard), and quorum fences across
 * overlapping majorities, restarted nodes and a paused holder.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redlockBackend, type RedlockBackendOptions } from '../../src/backends/redlock/index.js';
import { BackendUnavailableError, LockLostError } from '../../src/core/errors.js';
import type { Lease } from '../../src/core/lease.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { waitUntil } from '../harness/process.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

/** Nothing listens on port 1 of loopback: a node there is down (every connect is refused). */
const DOWN_URL = 'redis://127.0.0.1:1';

let servers: RedisServer[] = [];
let direct: Redis[] = [];
const managers: LockManager[] = [];

beforeAll(async () => {
  servers = await Promise.all([0, 1, 2, 3, 4].map(() => startRedis()));
  direct = servers.map((server) => new Redis(server.url, { maxRetriesPerRequest: 1 }));
  for (const client of direct) client.on('error', () => undefined);
});
afterEach(async () => {
  // A test that stopped or killed a node brings it back for the next one.
  for (const server of servers) server.process.kill('SIGCONT');
  await Promise.all(
    servers.map(async (server) => {
      if (server.process.exitCode !== null || server.process.signalCode !== null) {
        await server.restart();
      }
    }),
  );
});
afterAll(async () => {
  await Promise.allSettled(managers.map((locks) => locks.close()));
  for (const client of direct) client.disconnect();
  await Promise.all(servers.map((server) => server.stop()));
});

function manager(
  options: Partial<RedlockBackendOptions> = {},
  urls = servers.map((server) => server.url),
): LockManager {
  // A per-node timeout of a second: these tests are about which nodes answer, not how fast, and
  // on a loaded machine a live node may take longer than the default 100 ms (the stalled-node
  // test sets its own).
  const locks = createLocks({
    backend: redlockBackend({ urls, nodeTimeoutMs: 1_000, ...options }),
    ttlMs: 10_000,
  });
  managers.push(locks);
  return locks;
}

let keyCounter = 0;
const freshKey = (label: string) => `redlock-faults/${label}-${(keyCounter += 1)}`;
/** The Redis key of a lock on each node (default prefixes). */
const redisKey = (key: string) => `distlock:{${key}}`;

/** Make node `index` hold `key` for another owner, as its own acquire would. */
async function holdElsewhere(index: number, key: string, ttlMs: number): Promise<void> {
  await direct[index]!.hset(redisKey(key), 't', 'another-owner');
  await direct[index]!.pexpire(redisKey(key), ttlMs);
}

/** The token node `index` holds `key` for, or null. */
async function holderOn(index: number, key: string): Promise<string | null> {
  return direct[index]!.hget(redisKey(key), 't');
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('redlock: which nodes grant', () => {
  it('for every subset of the 5 nodes held by another owner or down, acquires exactly when at least 3 are free', async () => {
    // Down nodes are nodes whose address refuses connections; one backend per set of them.
    const byDownSet = new Map<number, LockManager>();
    const managerFor = (down: number) => {
      let locks = byDownSet.get(down);
      if (!locks) {
        const urls = servers.map((server, i) => ((down >> i) & 1 ? DOWN_URL : server.url));
        locks = manager({}, urls);
        byDownSet.set(down, locks);
      }
      return locks;
    };
    // Every node has a fence counter before nodes go missing (a new deployment needs them all).
    await (await manager().acquire(freshKey('warm-up'))).release();
    let cases = 0;
    for (let unavailable = 0; unavailable < 32; unavailable += 1) {
      // Three ways to be unavailable: all held, all down, and alternating.
      for (const variant of ['held', 'down', 'mixed'] as const) {
        const nodes = [0, 1, 2, 3, 4].filter((i) => (unavailable >> i) & 1);
        const downNodes = nodes.filter(
          (i, n) => variant === 'down' || (variant === 'mixed' && n % 2 === 1),
        );
        const heldNodes = nodes.filter((i) => !downNodes.includes(i));
        const key = freshKey(`subset-${unavailable}-${variant}`);
        for (const i of heldNodes) await holdElsewhere(i, key, 30_000);
        const locks = managerFor(downNodes.reduce((mask, i) => mask | (1 << i), 0));
        let lease = null;
        try {
          lease = await locks.tryAcquire(key, { ttlMs: 5_000 });
        } catch (error) {
          expect(error).toBeInstanceOf(BackendUnavailableError);
        }
        const free = 5 - nodes.length;
        expect(lease !== null, `${free} free nodes (${variant}: ${nodes.join(',')})`).toBe(
          free >= 3,
        );
        if (lease) {
          expect((await locks.inspect(key))?.token).toBe(lease.token);
          await lease.release();
        }
        // Whatever the outcome, no free node is left holding it (no self-blocking).
        for (let i = 0; i < 5; i += 1) {
          if (!nodes.includes(i)) expect(await holderOn(i, key)).toBeNull();
        }
        cases += 1;
      }
    }
    expect(cases).toBe(96);
  });
});

describe('redlock: nodes that fail while held', () => {
  it('2 nodes killed while held: still held, extend works, nobody else gets it', async () => {
    const key = freshKey('kill-2');
    const holder = manager();
    const other = manager();
    const lease = await holder.acquire(key, { ttlMs: 10_000 });
    await Promise.all([servers[0]!.kill(), servers[1]!.kill()]);
    expect((await holder.inspect(key))?.token).toBe(lease.token);
    const before = lease.expiresAt;
    await delay(20);
    await lease.extend(10_000);
    expect(lease.expiresAt).toBeGreaterThan(before);
    expect(lease.signal.aborted).toBe(false);
    let taken = null;
    try {
      taken = await other.tryAcquire(key);
    } catch (error) {
      expect(error).toBeInstanceOf(BackendUnavailableError);
    }
    expect(taken).toBeNull();
    await lease.release();
  });

  it('3 nodes killed while held: extend fails, and the lease signal fires by its validity deadline', async () => {
    const key = freshKey('kill-3');
    const locks = manager();
    const ttlMs = 3_000;
    const lease = await locks.acquire(key, { ttlMs });
    const grantedAt = Date.now();
    const deadline = lease.expiresAt;
    // The copies were set before the grant, so expire before `grantedAt + ttlMs`: the local
    // deadline is earlier still, by the drift allowance.
    expect(deadline).toBeLessThanOrEqual(grantedAt + ttlMs - (Math.floor(ttlMs * 0.01) + 2));
    const lost = new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
    );
    await Promise.all([servers[0]!.kill(), servers[1]!.kill(), servers[2]!.kill()]);
    // Unreachable (two nodes cannot form a quorum), or lost if the machine is so slow that the
    // local deadline passed first: either way it fails.
    const failed = await lease.extend(ttlMs).then(
      () => null,
      (error: unknown) => error,
    );
    expect(
      failed instanceof BackendUnavailableError || failed instanceof LockLostError,
      String(failed),
    ).toBe(true);
    const firedAt = await lost;
    // Timers may run late on a loaded machine; the point is that nothing extended the deadline.
    expect(firedAt).toBeLessThanOrEqual(deadline + 250);
    expect(lease.expiresAt).toBe(deadline);
  });
});

describe('redlock: a stalled node', () => {
  it('one SIGSTOPped node costs at most the per-node timeout, not the TTL', async () => {
    const nodeTimeoutMs = 100;
    const locks = manager({ nodeTimeoutMs });
    const ttlMs = 30_000;
    // Connect every node first: a stalled node's first connect is bounded by connectTimeout.
    await (await locks.acquire(freshKey('stop-warm-up'), { ttlMs })).release();
    servers[0]!.process.kill('SIGSTOP');
    try {
      // A quorum without the stalled node: no wait for it at all.
      const quick = freshKey('stop-quorum');
      let startedAt = Date.now();
      const lease = await locks.acquire(quick, { ttlMs });
      const acquireMs = Date.now() - startedAt;
      await lease.release();
      // The stalled node's vote decides: the attempt ends after its timeout (plus the release).
      const decided = freshKey('stop-decides');
      await holdElsewhere(1, decided, ttlMs);
      await holdElsewhere(2, decided, ttlMs);
      startedAt = Date.now();
      const none = await locks.tryAcquire(decided, { ttlMs }).catch((error: unknown) => {
        expect(error).toBeInstanceOf(BackendUnavailableError);
        return null;
      });
      const refusedMs = Date.now() - startedAt;
      expect(none).toBeNull();
      // Generous bounds for a loaded machine, and still two orders of magnitude below the TTL.
      expect(acquireMs).toBeLessThan(ttlMs / 20);
      expect(refusedMs).toBeGreaterThanOrEqual(nodeTimeoutMs - 5);
      expect(refusedMs).toBeLessThan(ttlMs / 20);
    } finally {
      servers[0]!.process.kill('SIGCONT');
    }
    // Once it runs again it processes the late acquire and then its release: nothing is left.
    await waitUntil('stalled node drained', async () => (await direct[0]!.dbsize()) >= 0, 5_000);
    const leftovers = await direct[0]!.keys('distlock:{redlock-faults/stop-*');
    expect(leftovers).toEqual([]);
  });
});

describe('redlock: a node restarted without persistence while held', () => {
  /**
   * A holds on nodes 0-2 (3-4 briefly held by someone else). Node 2 restarts empty. Once 3-4 are
   * free again, a second client finds 2, 3, 4 free: a second majority for a held lock.
   */
  async function setUp(label: string) {
    const key = freshKey(label);
    await holdElsewhere(3, key, 600);
    await holdElsewhere(4, key, 600);
    const a = await manager().acquire(key, { ttlMs: 20_000 });
    expect(await holderOn(0, key)).toBe(a.token);
    expect(await holderOn(3, key)).toBe('another-owner');
    await servers[2]!.restart();
    await waitUntil(
      'the other owner expired',
      async () => (await holderOn(3, key)) === null,
      5_000,
    );
    await waitUntil(
      'the other owner expired',
      async () => (await holderOn(4, key)) === null,
      5_000,
    );
    return { key, a };
  }

  it('without a guard, a second client gets the lock while the first still holds it (the hazard)', async () => {
    const { key, a } = await setUp('restart-hazard');
    const b = await manager().tryAcquire(key, { ttlMs: 5_000 });
    expect(b).not.toBeNull();
    expect(a.signal.aborted).toBe(false); // A has no way to know: both hold it
    await b!.release();
    await a.release();
  });

  it('with restartGuardMs, the restarted node does not vote until the guard has passed', async () => {
    const guardMs = 2_000;
    // The other nodes must be past the guard themselves (earlier tests restarted some).
    const uptime = async (i: number) =>
      Number(/uptime_in_seconds:(\d+)/.exec(await direct[i]!.info('server'))?.[1]);
    await waitUntil(
      'nodes past the guard',
      async () =>
        (await Promise.all([0, 1, 3, 4].map(uptime))).every((s) => s - 1 >= guardMs / 1000),
      10_000,
      100,
    );
    const { key, a } = await setUp('restart-guard');
    const guarded = manager({ restartGuardMs: guardMs });
    let b = await guarded.tryAcquire(key, { ttlMs: 5_000 }).catch(() => null);
    expect(b).toBeNull();
    expect(await holderOn(2, key)).toBeNull(); // the young node refused; nothing was left
    await a.release();
    // Once the holder is gone, the other nodes alone form a quorum again at once.
    b = await guarded.tryAcquire(key, { ttlMs: 5_000 });
    expect(b).not.toBeNull();
    expect(await holderOn(2, key)).toBeNull(); // still refused by the young node
    await b!.release();
    // After the guard, the restarted node votes again.
    await waitUntil(
      'the restarted node votes',
      async () => {
        const lease = await guarded.tryAcquire(key, { ttlMs: 5_000 });
        if (!lease) return false;
        const voted = (await holderOn(2, key)) === lease.token;
        await lease.release();
        return voted;
      },
      15_000,
      200,
    );
  });
});

describe('redlock: quorum fences', () => {
  it('strictly increase across holders with overlapping majorities', async () => {
    const locks = manager();
    const key = freshKey('fence-overlap');
    const fences: bigint[] = [];
    // Each holder's majority is a different window of three nodes: 0-2, 1-3, 2-4, 3-0, 4-1.
    for (let start = 0; start < 5; start += 1) {
      const busy = [3, 4].map((offset) => (start + offset) % 5);
      for (const i of busy) await holdElsewhere(i, key, 60_000);
      const lease = await locks.acquire(key, { ttlMs: 5_000 });
      fences.push(lease.fence);
      await lease.release();
      for (const i of busy) await direct[i]!.del(redisKey(key));
    }
    for (let i = 1; i < fences.length; i += 1) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
  });

  it('strictly increase when nodes restart empty between holders', async () => {
    const locks = manager();
    const key = freshKey('fence-restart');
    let last = (await locks.acquire(key, { ttlMs: 5_000 })).fence;
    await locks.forceRelease(key);
    for (const restarted of [
      [0, 1],
      [2, 3],
      [4, 0],
    ]) {
      await Promise.all(restarted.map((i) => servers[i]!.restart()));
      // Until the client has reconnected to the restarted nodes, fewer than a majority may have
      // a counter (the last fence write could not reach them): then it refuses to issue a fence
      // (a retryable error) rather than issue a lower one.
      const got: { lease?: Lease } = {};
      await waitUntil(
        'a fence issued',
        async () => {
          const lease = await locks.tryAcquire(key, { ttlMs: 5_000 }).catch((error: unknown) => {
            expect(error).toBeInstanceOf(BackendUnavailableError);
            return null;
          });
          if (lease) got.lease = lease;
          return lease !== null;
        },
        10_000,
        50,
      );
      const lease = got.lease!;
      expect(lease.fence).toBeGreaterThan(last);
      last = lease.fence;
      await lease.release();
    }
  });

  it('a new deployment with a node down issues no fence until every node has answered once', async () => {
    // A prefix of its own: no node has its fence counter yet.
    const prefix = `fresh-${Date.now()}:`;
    const up = servers.map((server) => server.url);
    const oneDown = [DOWN_URL, ...up.slice(1)];
    const partial = manager({ prefix }, oneDown);
    const key = freshKey('fence-new');
    const refused = await partial.tryAcquire(key).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BackendUnavailableError);
    expect(String((refused as Error).message)).toMatch(/fence counter/);
    expect(await holderOn(1, key)).toBeNull(); // the won lock was given back
    const whole = manager({ prefix });
    const first = await whole.acquire(key);
    expect(first.fence).toBe(1n);
    await first.release();
    // Every node has a counter now: a majority of them is enough again.
    const next = await partial.acquire(key);
    expect(next.fence).toBe(2n);
    await next.release();
  });

  it('a paused holder that comes back finds its lease lost, and the next holder has a higher fence', async () => {
    const locks = manager();
    const other = manager();
    const key = freshKey('fence-paused');
    const paused = await locks.acquire(key, { ttlMs: 1_000 });
    // The holder "pauses" past its TTL (a GC pause, a stopped VM): it does nothing meanwhile.
    await delay(1_300);
    const next = await other.acquire(key, { ttlMs: 5_000 });
    expect(next.fence).toBeGreaterThan(paused.fence);
    // Back from the pause: its lease is gone locally and on the nodes.
    expect(paused.signal.aborted).toBe(true);
    await expect(paused.extend(5_000)).rejects.toThrow();
    expect((await other.inspect(key))?.token).toBe(next.token);
    await next.release();
  });
});
