/**
 * The Redis backend on a 3-master Redis Cluster (made with `redis-cli --cluster create`): the
 * conformance suite, over a user-supplied ioredis `Cluster` per simulated client.
 */
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import { lockKeys } from '../../src/backends/redis/keys.js';
import type { LockBackend } from '../../src/core/backend.js';
import { createLocks } from '../../src/core/locks.js';
import { runConformanceSuite } from '../../src/testing/index.js';
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
});
