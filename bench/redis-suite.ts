/**
 * The Redis benchmarks (issue 4): B1, B2 and B3 for distlock, redlock and redis-semaphore (each at
 * its defaults and tuned) and the two floors, all on the one spawned redis-server.
 */
import type { Contender } from './contenders/contender.js';
import { redisBackend } from '../src/backends/redis/index.js';
import { distlockVariants } from './contenders/distlock.js';
import { closeRedis, connectRedis } from './contenders/redis-connection.js';
import { fifoHandoffFloor } from './contenders/redis-fifo-floor.js';
import { handRolled, pingPairs } from './contenders/redis-floors.js';
import { redisSemaphore, redlock } from './contenders/redis-peers.js';
import type { BenchOptions } from './options.js';
import { contendedTable, manyKeysTable, uncontendedTable, type StoreResults } from './report.js';
import { runContendedInterleaved } from './scenarios/contended.js';
import { redisCounter } from './scenarios/counter.js';
import { runManyKeys } from './scenarios/many-keys.js';
import { runUncontended } from './scenarios/uncontended.js';
import type { Table } from './table.js';

/** Lease TTL for every contender: long enough never to expire during a run. */
const TTL_MS = 10_000;
const CLIENTS = 8;

/** distlock's Redis rows: one lock manager and backend per client, each on its own connection. */
function distlockContenders(port: number): Promise<Contender[]> {
  const open = async () => {
    const client = await connectRedis(port);
    return { backend: redisBackend({ client }), close: () => closeRedis(client) };
  };
  return distlockVariants(open, TTL_MS);
}

/** Run B1, B2 and B3 on Redis at `port`, showing each table as soon as it is ready. */
export async function benchRedis(
  port: number,
  options: BenchOptions,
  show: (table: Table) => void,
  log: (line: string) => void,
): Promise<StoreResults> {
  const prefix = `bench:${Date.now()}:`;
  const distlockRows = await distlockContenders(port);
  const contenders: Contender[] = [
    pingPairs(port),
    handRolled(port, { ttlMs: TTL_MS, retryMs: 1 }),
    ...distlockRows,
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
  for (const contender of contenders)
    log(`redis: ${contender.name.padEnd(28)} ${contender.settings}`);

  log(
    `redis B1: ${contenders.length} contenders interleaved for ${options.uncontendedMs / 1000} s`,
  );
  const b1 = await runUncontended(contenders, {
    budgetMs: options.uncontendedMs,
    // Round-trip latency here flips between two modes (scheduling of client and server on the
    // two cores) every few hundred operations: small chunks give every contender the same mix.
    chunkOps: 25,
    warmupOps: options.quick ? 50 : 500,
    keyPrefix: prefix,
    onProgress: log,
  });
  const partial: StoreResults = {
    store: 'redis',
    floor: 'hand-rolled SET NX',
    networkFloor: 'PING pairs',
    b1,
    b2: [],
    b2Reference: 'tuned',
    b2Bound: { row: fairFloor.name, label: 'FIFO floor' },
  };
  show(uncontendedTable(partial));

  // The FIFO handoff floor only makes sense under contention: B2 alone.
  const lockRows = [...contenders.filter((c) => c.excludes), fairFloor];
  log(
    `redis B2: ${lockRows.length} contenders × ${options.contendedMs / 1000} s ` +
      `in ${options.contendedRounds} interleaved round(s), after ${options.contendedWarmupMs / 1000} s of warm-up each`,
  );
  const b2 = await runContendedInterleaved(lockRows, {
    clients: CLIENTS,
    durationMs: options.contendedMs,
    rounds: options.contendedRounds,
    warmupMs: options.contendedWarmupMs,
    drainMs: 15_000,
    key: `${prefix}b2:`,
    counterKey: `${prefix}b2:counter:`,
    counter: redisCounter(port),
    onResult: (result) =>
      log(
        `redis B2: ${result.name.padEnd(28)} ${Math.round(result.opsPerSec)} ops/s, ` +
          `p99 wait ${result.waitP99Ms.toFixed(1)} ms${result.correct ? '' : '  *** COUNTER CHECK FAILED ***'}`,
      ),
  });
  show(contendedTable({ ...partial, b2 }));

  log(
    `redis B3: ${options.manyKeysRounds} round(s) of ${options.manyKeysRoundMs} ms per contender`,
  );
  const b3 = await runManyKeys(contenders, {
    inFlight: 64,
    rounds: options.manyKeysRounds,
    roundMs: options.manyKeysRoundMs,
    keyPrefix: prefix,
  });
  const results: StoreResults = { ...partial, b2, b3 };
  const table = manyKeysTable(results);
  if (table) show(table);
  return results;
}
