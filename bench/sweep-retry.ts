/**
 * How the peers' "tuned" rows were chosen: B2 (8 clients, one key) for a range of retry settings
 * of each peer, on a spawned server. Not part of `npm run bench`; run it by hand:
 *
 * @example
 * ```sh
 * npx tsx bench/sweep-retry.ts redis      # redlock retryDelay, redis-semaphore retryInterval
 * npx tsx bench/sweep-retry.ts etcd 3s    # etcd3 Lock harness backoff
 * ```
 */
import type { Contender } from './contenders/contender.js';
import { etcd3Lock } from './contenders/etcd-floor-and-peer.js';
import { redisSemaphore, redlock } from './contenders/redis-peers.js';
import { parseDuration } from './options.js';
import { runContended } from './scenarios/contended.js';
import { etcdCounter, redisCounter, type CounterFactory } from './scenarios/counter.js';
import { startEtcd, startRedis, stopAllServers } from './servers.js';
import { decimal, integer, percent, renderText } from './table.js';

const TTL_MS = 10_000;

async function sweep(store: string, durationMs: number): Promise<void> {
  let contenders: Contender[];
  let counter: CounterFactory;
  if (store === 'redis') {
    const { port } = await startRedis();
    counter = redisCounter(port);
    const redlockDelays: [number, number][] = [
      [200, 100],
      [50, 25],
      [10, 5],
      [5, 2],
      [2, 1],
      [1, 1],
      [0, 0],
    ];
    contenders = [
      ...redlockDelays.map(([retryDelay, retryJitter]) =>
        redlock(port, {
          ttlMs: TTL_MS,
          tuned: true,
          settings: { retryCount: -1, retryDelay, retryJitter },
        }),
      ),
      ...[10, 5, 2, 1].map((retryIntervalMs) =>
        redisSemaphore(port, { ttlMs: TTL_MS, tuned: true, retryIntervalMs }),
      ),
    ];
  } else if (store === 'etcd') {
    const { port } = await startEtcd();
    counter = etcdCounter(port);
    const backoffs: [number, number][] = [
      [1, 10],
      [2, 20],
      [5, 50],
      [10, 100],
      [10, 200],
      [25, 250],
      [50, 500],
    ];
    contenders = backoffs.map(([firstMs, maxMs]) =>
      etcd3Lock(port, { ttlSeconds: TTL_MS / 1000, tuned: true, backoff: { firstMs, maxMs } }),
    );
  } else {
    throw new Error('usage: npx tsx bench/sweep-retry.ts redis|etcd [duration]');
  }
  const rows: string[][] = [];
  for (const [index, contender] of contenders.entries()) {
    const result = await runContended(contender, {
      clients: 8,
      durationMs,
      drainMs: 15_000,
      key: `sweep:${Date.now()}:${index}`,
      counterKey: `sweep:${Date.now()}:${index}:counter`,
      counter,
    });
    rows.push([
      contender.name.replace(/ \(.*\)$/, ''),
      contender.settings,
      integer(result.opsPerSec),
      decimal(result.waitP99Ms, 1),
      decimal(result.waitMaxMs, 1),
      decimal(result.jain, 3),
      percent(result.sameHolder),
      result.correct ? 'OK' : 'FAIL',
    ]);
    process.stderr.write(`· ${contender.settings}\n`);
  }
  const headers = ['peer', 'settings', 'ops/s', 'p99 ms', 'max ms', 'Jain', 'same holder', 'check'];
  const title = `${store} B2 retry sweep, 8 clients, ${durationMs / 1000} s each`;
  process.stdout.write(
    `${renderText({ title, headers, rows, right: headers.map((_, i) => i > 1) })}\n`,
  );
}

try {
  await sweep(process.argv[2] ?? '', parseDuration(process.argv[3] ?? '4s'));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await stopAllServers();
  process.exit();
}
