/**
 * The Redis benchmarks: B1, B2 and B3 (issue 4) for distlock, redlock and redis-semaphore (each
 * at its defaults and tuned) and the floors; B4–B6 (issue 14) for distlock's read-write lock and
 * semaphore beside Redisson-like semantics, redis-semaphore's semaphores and their floors; all on
 * the one spawned redis-server. distlock's B1–B3 rows run over ioredis and over node-redis. With `--baseline`, another build of distlock runs as one more row
 * of B1–B3.
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Contender } from './contenders/contender.js';
import { redisBackend } from '../src/backends/redis/index.js';
import {
  distlock,
  distlockVariants,
  type BackendOpener,
  type DistlockLibrary,
} from './contenders/distlock.js';
import { asKinds, distlockKinds, type KindsContender } from './contenders/kinds.js';
import { nodeRedisOpener } from './contenders/node-redis-connection.js';
import { closeRedis, connectRedis } from './contenders/redis-connection.js';
import { fifoHandoffFloor } from './contenders/redis-fifo-floor.js';
import { handRolled, pingPairs } from './contenders/redis-floors.js';
import {
  fifoSemaphoreFloor,
  redisSemaphorePermits,
  redissonLike,
} from './contenders/redis-kinds-peers.js';
import { redisSemaphore, redlock } from './contenders/redis-peers.js';
import type { BenchOptions } from './options.js';
import { mixedTable, readersTable, semaphoreTable, type KindsResults } from './report-kinds.js';
import { contendedTable, manyKeysTable, uncontendedTable, type StoreResults } from './report.js';
import { runB2 } from './scenarios/contended.js';
import { redisCounter } from './scenarios/counter.js';
import { mixedPlan, runKinds, type KindsLaneSpec, type KindsOptions } from './scenarios/kinds.js';
import { runManyKeys } from './scenarios/many-keys.js';
import { runB1 } from './scenarios/uncontended.js';
import type { Table } from './table.js';

/** Lease TTL for every contender: long enough never to expire during a run. */
const TTL_MS = 10_000;
const CLIENTS = 8;
/** B6: permits of the semaphore. */
export const KINDS_LIMIT = 3;

/** An opener of distlock Redis backends, one per client, each on its own connection. */
function opener(port: number, backendOf: typeof redisBackend): BackendOpener {
  return async () => {
    const client = await connectRedis(port);
    return { backend: backendOf({ client }), close: () => closeRedis(client) };
  };
}

/** distlock's Redis rows (over ioredis, and over node-redis), and the baseline build's when asked for. */
async function distlockContenders(port: number, options: BenchOptions): Promise<Contender[]> {
  const overNodeRedis = distlock({
    label: '(node-redis)',
    ttlMs: TTL_MS,
    tuned: false,
    settings: 'createLocks defaults over a node-redis (redis v5) client instead of ioredis',
    open: nodeRedisOpener(port),
  });
  return [...(await ioredisContenders(port, options)), overNodeRedis];
}

async function ioredisContenders(port: number, options: BenchOptions): Promise<Contender[]> {
  const baseline = options.baseline;
  if (!baseline) return distlockVariants(opener(port, redisBackend), TTL_MS);
  const dist = join(resolve(baseline.dir), 'dist');
  const load = (path: string) => import(pathToFileURL(join(dist, path)).href);
  const library = (await load('index.js')) as DistlockLibrary;
  const redis = (await load('backends/redis/index.js')) as { redisBackend: typeof redisBackend };
  return distlockVariants(opener(port, redisBackend), TTL_MS, {
    label: baseline.label,
    library,
    open: opener(port, redis.redisBackend),
  });
}

/** Run the selected scenarios on Redis at `port`, showing each table as soon as it is ready. */
export async function benchRedis(
  port: number,
  options: BenchOptions,
  show: (table: Table) => void,
  log: (line: string) => void,
): Promise<StoreResults> {
  const prefix = `bench:${Date.now()}:`;
  const contenders: Contender[] = [
    pingPairs(port),
    handRolled(port, { ttlMs: TTL_MS, retryMs: 1 }),
    ...(await distlockContenders(port, options)),
    redlock(port, { ttlMs: TTL_MS, tuned: false, settings: {} }),
    redlock(port, {
      ttlMs: TTL_MS,
      tuned: true,
      settings: { retryCount: -1, retryDelay: 2, retryJitter: 1 },
    }),
    redisSemaphore(port, { ttlMs: TTL_MS, tuned: false }),
    redisSemaphore(port, { ttlMs: TTL_MS, tuned: true, retryIntervalMs: 1 }),
  ];
  const fairFloor = fifoHandoffFloor(port, { ttlMs: TTL_MS });
  const { scenarios } = options;
  let results: StoreResults = {
    store: 'redis',
    floor: 'hand-rolled SET NX',
    networkFloor: 'PING pairs',
    b1: [],
    b2: [],
    b2Reference: 'tuned',
    b2Bound: { row: fairFloor.name, label: 'FIFO floor' },
  };
  if (scenarios.has('b1') || scenarios.has('b2') || scenarios.has('b3')) {
    for (const contender of contenders)
      log(`redis: ${contender.name.padEnd(28)} ${contender.settings}`);
  }

  if (scenarios.has('b1')) {
    const b1 = await runB1(
      'redis',
      contenders,
      options.uncontendedMs,
      {
        // Round-trip latency here flips between two modes (scheduling of client and server on the
        // two cores) every few hundred operations: small chunks give every contender the same mix.
        chunkOps: 25,
        warmupOps: options.quick ? 50 : 500,
        keyPrefix: prefix,
      },
      log,
    );
    results = { ...results, b1 };
    show(uncontendedTable(results));
  }

  if (scenarios.has('b2')) {
    // The FIFO handoff floor only makes sense under contention: B2 alone.
    const lockRows = [...contenders.filter((c) => c.excludes), fairFloor];
    const b2 = await runB2(
      'redis',
      lockRows,
      { ...options, clients: CLIENTS },
      { key: `${prefix}b2:`, counterKey: `${prefix}b2:counter:`, counter: redisCounter(port) },
      log,
    );
    results = { ...results, b2 };
    show(contendedTable(results));
  }

  if (scenarios.has('b3')) {
    log(
      `redis B3: ${options.manyKeysRounds} round(s) of ${options.manyKeysRoundMs} ms per contender`,
    );
    const b3 = await runManyKeys(contenders, {
      inFlight: 64,
      rounds: options.manyKeysRounds,
      roundMs: options.manyKeysRoundMs,
      keyPrefix: prefix,
    });
    results = { ...results, b3 };
    const table = manyKeysTable(results);
    if (table) show(table);
  }

  const kinds = await benchKinds(port, options, prefix, show, log);
  return kinds ? { ...results, kinds } : results;
}

/** B4–B6, those selected; undefined when none is. */
async function benchKinds(
  port: number,
  options: BenchOptions,
  prefix: string,
  show: (table: Table) => void,
  log: (line: string) => void,
): Promise<KindsResults | undefined> {
  const { scenarios } = options;
  if (!scenarios.has('b4') && !scenarios.has('b5') && !scenarios.has('b6')) return undefined;
  const mine = distlockKinds({
    open: opener(port, redisBackend),
    ttlMs: TTL_MS,
    limit: KINDS_LIMIT,
  });
  const redisson = redissonLike(port, { ttlMs: TTL_MS, retryMs: 1 });
  const shared = (name: string): KindsOptions => ({
    durationMs: options.kindsMs,
    rounds: options.contendedRounds,
    warmupMs: options.contendedWarmupMs,
    drainMs: 30_000,
    limit: KINDS_LIMIT,
    key: `${prefix}${name}:`,
    counterKey: `${prefix}${name}:counter:`,
    counter: redisCounter(port),
    onResult: (result) =>
      log(
        `redis ${name.toUpperCase()}: ${`${result.name} ${result.label}`.padEnd(40)} ` +
          `${Math.round(result.opsPerSec)} ops/s${result.correct ? '' : '  *** RULES BROKEN ***'}`,
      ),
  });
  const describe = (name: string, rows: readonly KindsContender[]) => {
    for (const contender of rows)
      log(`redis ${name}: ${contender.name.padEnd(36)} ${contender.settings}`);
  };
  const results: { -readonly [K in keyof KindsResults]: KindsResults[K] } = {};

  if (scenarios.has('b4')) {
    // PING pairs, the floor: two round trips per read and nothing else.
    const rows = [asKinds(pingPairs(port), ['read']), redisson, mine];
    describe('B4', rows);
    const specs: KindsLaneSpec[] = rows.flatMap((contender) =>
      [1, CLIENTS].map((clients) => ({
        contender,
        clients,
        plan: () => 'read' as const,
        label: clients === 1 ? '1 reader' : `${clients} readers`,
      })),
    );
    results.b4 = await runKinds(specs, shared('b4'));
    show(readersTable(results.b4));
  }

  if (scenarios.has('b5')) {
    const rows = [redisson, mine];
    describe('B5', rows);
    const plan = mixedPlan(0.1);
    const specs = rows.map((contender) => ({ contender, clients: CLIENTS, plan, label: '90/10' }));
    results.b5 = await runKinds(specs, shared('b5'));
    show(mixedTable(results.b5));
  }

  if (scenarios.has('b6')) {
    const rows = [
      fifoSemaphoreFloor(port, { limit: KINDS_LIMIT }),
      mine,
      redisSemaphorePermits(port, { ttlMs: TTL_MS, limit: KINDS_LIMIT, tuned: false }),
      redisSemaphorePermits(port, {
        ttlMs: TTL_MS,
        limit: KINDS_LIMIT,
        tuned: true,
        retryIntervalMs: 1,
      }),
      redisSemaphorePermits(port, {
        ttlMs: TTL_MS,
        limit: KINDS_LIMIT,
        tuned: true,
        retryIntervalMs: 1,
        redlock: true,
      }),
    ];
    describe('B6', rows);
    const specs = rows.map((contender) => ({
      contender,
      clients: CLIENTS,
      plan: () => 'permit' as const,
      label: `limit ${KINDS_LIMIT}`,
    }));
    results.b6 = await runKinds(specs, shared('b6'));
    show(semaphoreTable(results.b6, KINDS_LIMIT));
  }
  return results;
}
