/**
 * The Redlock benchmarks (issue 15), on five spawned redis-servers: B1 (uncontended acquire +
 * release) against one parallel PING round to the five nodes, and B2 (8 clients on one key)
 * against npm `redlock` and redis-semaphore's `RedlockMutex` over the same five servers.
 */
import {
  distlockRedlock,
  npmRedlock,
  pingRounds,
  redlockMutex,
} from './contenders/redlock-nodes.js';
import type { Contender } from './contenders/contender.js';
import type { BenchOptions } from './options.js';
import { contendedTable, uncontendedTable, type StoreResults } from './report.js';
import { runB2 } from './scenarios/contended.js';
import { redisCounter } from './scenarios/counter.js';
import { runB1 } from './scenarios/uncontended.js';
import type { Table } from './table.js';

/** Lease TTL for every contender: long enough never to expire during a run. */
const TTL_MS = 10_000;
const CLIENTS = 8;

/** Run B1 and B2 (those selected) on the nodes at `ports`. */
export async function benchRedlock(
  ports: readonly number[],
  options: BenchOptions,
  show: (table: Table) => void,
  log: (line: string) => void,
): Promise<StoreResults> {
  const prefix = `bench:${Date.now()}:`;
  const contenders: Contender[] = [
    pingRounds(ports),
    distlockRedlock(ports, { ttlMs: TTL_MS, fencing: 'quorum', tuned: false }),
    distlockRedlock(ports, { ttlMs: TTL_MS, fencing: 'none', tuned: false }),
    distlockRedlock(ports, { ttlMs: TTL_MS, fencing: 'quorum', tuned: true }),
    npmRedlock(ports, { ttlMs: TTL_MS, tuned: false, settings: {} }),
    npmRedlock(ports, {
      ttlMs: TTL_MS,
      tuned: true,
      settings: { retryCount: -1, retryDelay: 2, retryJitter: 1 },
    }),
    redlockMutex(ports, { ttlMs: TTL_MS, tuned: false }),
    redlockMutex(ports, { ttlMs: TTL_MS, tuned: true, retryIntervalMs: 1 }),
  ];
  let results: StoreResults = {
    store: 'redlock',
    floor: 'PING rounds',
    b1: [],
    b2: [],
    b2Reference: 'tuned',
  };
  for (const contender of contenders)
    log(`redlock: ${contender.name.padEnd(34)} ${contender.settings}`);
  if (options.scenarios.has('b1')) {
    const b1 = await runB1(
      'redlock',
      contenders,
      options.uncontendedMs,
      { chunkOps: 25, warmupOps: options.quick ? 50 : 500, keyPrefix: prefix },
      log,
    );
    results = { ...results, b1 };
    show(uncontendedTable(results));
  }
  if (options.scenarios.has('b2')) {
    const b2 = await runB2(
      'redlock',
      contenders.filter((contender) => contender.excludes),
      { ...options, clients: CLIENTS },
      // The shared counter lives on the first node (it checks mutual exclusion, not the lock).
      { key: `${prefix}b2:`, counterKey: `${prefix}b2:counter:`, counter: redisCounter(ports[0]!) },
      log,
    );
    results = { ...results, b2 };
    show(contendedTable(results));
  }
  return results;
}
