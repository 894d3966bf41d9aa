/**
 * The Redis backend on a 3-master Redis Cluster (made with `redis-cli --cluster create`): the
 * conformance suite, over a user-supplied ioredis `Cluster` per simulated client.
 */
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../src/backend-url.js';
import { redisBackend } from '../../src/backends/redis/index.js';
import { lockKeys } from '../../src/backends/redis/keys.js';
import type { LockBackend } from '../../src/core/backend.js';
import { createLocks } from '../../src/core/locks.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { cli } from '../cli/cli-process.js';
import { startRedisCluster, type RedisCluster } from '../harness/redis.js';

const fixture = fileURLToPath(new URL('../fixtures/redis-backend.ts', import.meta.url));

let cluster: RedisCluster;
const clients: Cluster[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  process.env.DISTLOCK_REDIS_CLUSTER_NODES = cluster.nodes
    .map(({ host, port }) => `${host}:${port}`)
    .join(',');
});
afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.quit()));
  await cluster?.stop();
});

function clusterBackend(): LockBackend {
  const client = new Cluster([...cluster.nodes]);
  clients.push(client);
  return redisBackend({ client });
}

runConformanceSuite({
  name: 'redis-cluster',
  createBackend: clusterBackend,
  processBackendModule: fixture,
});

describe('redis backend on a cluster', () => {
  it('spreads locks over the masters, each lock (and its fence counter) in one slot', async () => {
    const probe = new Cluster([...cluster.nodes]);
    clients.push(probe);
    const locks = createLocks({ backend: redisBackend({ client: probe }) });
    const keys = Array.from({ length: 24 }, (_, i) => `spread-${i}`);
    const leases = await Promise.all(keys.map((key) => locks.acquire(key, { waitMs: 0 })));
    const owners = new Set<string>();
    for (const key of keys) {
      const { lock: lockKey, fence, queue, waiters } = lockKeys('distlock:', key);
      const slot = Number(await probe.cluster('KEYSLOT', lockKey));
      for (const other of [fence, queue, waiters, `${lockKey}:s`, `${lockKey}:h`]) {
        expect(Number(await probe.cluster('KEYSLOT', other)), other).toBe(slot);
      }
      expect(await probe.exists(fence), 'the fence counter of the slot').toBe(1);
      const slots = (await probe.cluster('SLOTS')) as unknown as [
        number,
        number,
        [string, number],
      ][];
      const owner = slots.find(([from, to]) => slot >= from && slot <= to)!;
      owners.add(`${owner[2][0]}:${owner[2][1]}`);
    }
    expect(owners.size).toBe(3);
    await Promise.all(leases.map((lease) => lease.release()));
    await locks.close();
  });

  it('is reached by a redis+cluster:// URL (createLocks, DISTLOCK_URL, the CLI): locks on every master, queued waiters served', async () => {
    const url = `redis+cluster://${cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
    const backend = await openBackend(url);
    const other = redisBackend({ url });
    const locks = createLocks({ backend, ttlMs: 5_000 });
    const others = createLocks({ backend: other, ttlMs: 5_000 });
    try {
      const keys = Array.from({ length: 12 }, (_, i) => `by-url-${i}`);
      const leases = await Promise.all(keys.map((key) => locks.acquire(key, { waitMs: 0 })));
      const waiting = others.acquire(keys[0]!, { waitMs: 5_000 });
      await expect(others.tryAcquire(keys[1]!)).resolves.toBeNull();
      const listed = await locks.list('by-url-');
      expect(listed.map((info) => info.key).sort()).toEqual([...keys].sort());
      await Promise.all(leases.map((lease) => lease.release()));
      const next = await waiting;
      expect(next.fence).toBeGreaterThan(leases[0]!.fence);
      await next.release();
    } finally {
      await Promise.all([locks.close(), others.close()]);
    }
  });

  it('the CLI runs a command under a lock taken through DISTLOCK_URL=redis+cluster://…', async () => {
    const url = `redis+cluster://${cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
    const result = await cli(['run', '--no-wait', 'cli-cluster', '--', 'true'], {
      DISTLOCK_URL: url,
    });
    expect(result.code, result.stderr).toBe(0);
  });
});
