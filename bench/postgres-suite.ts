/**
 * The PostgreSQL benchmarks (issue 16): B1, B2 and B3 for distlock (lease mode; session mode in
 * B1 and B2), the npm `advisory-lock` package, the `SELECT 1` floor (the issue's: round trips only)
 * and the `UPDATE` floor (two write transactions), all on one spawned cluster.
 */
import { postgresBackend } from '../src/backends/postgres/index.js';
import type { Contender } from './contenders/contender.js';
import { distlock, distlockVariants } from './contenders/distlock.js';
import {
  advisoryLock,
  postgresCounter,
  selectOnePairs,
  updatePairs,
} from './contenders/postgres.js';
import type { BenchOptions } from './options.js';
import { contendedTable, manyKeysTable, uncontendedTable, type StoreResults } from './report.js';
import { runContendedInterleaved } from './scenarios/contended.js';
import { runManyKeys } from './scenarios/many-keys.js';
import { runUncontended } from './scenarios/uncontended.js';
import type { Table } from './table.js';

const TTL_MS = 10_000;
const CLIENTS = 8;

/** distlock's rows: one lock manager and backend (its own pool) per client. */
async function distlockContenders(url: string): Promise<Contender[]> {
  const lease = await distlockVariants(async () => {
    const backend = postgresBackend({ url });
    return { backend, close: async () => undefined };
  }, TTL_MS);
  const session = distlock({
    label: '(session mode)',
    ttlMs: TTL_MS,
    tuned: false,
    settings: "mode 'session': each holding on its own pooled connection with an advisory lock",
    open: async () => ({
      backend: postgresBackend({ url, mode: 'session' }),
      close: async () => undefined,
    }),
  });
  return [...lease, session];
}

/** Run B1, B2 and B3 on PostgreSQL at `url`, showing each table as soon as it is ready. */
export async function benchPostgres(
  url: string,
  options: BenchOptions,
  show: (table: Table) => void,
  log: (line: string) => void,
): Promise<StoreResults> {
  const prefix = `bench/${Date.now()}/`;
  const contenders: Contender[] = [
    selectOnePairs(url),
    updatePairs(url),
    ...(await distlockContenders(url)),
    advisoryLock(url),
  ];
  for (const contender of contenders)
    log(`postgres: ${contender.name.padEnd(28)} ${contender.settings}`);

  log(
    `postgres B1: ${contenders.length} contenders interleaved for ${options.uncontendedMs / 1000} s`,
  );
  const b1 = await runUncontended(contenders, {
    budgetMs: options.uncontendedMs,
    chunkOps: 25,
    warmupOps: options.quick ? 50 : 500,
    keyPrefix: prefix,
    onProgress: log,
  });
  const partial: StoreResults = {
    store: 'postgres',
    floor: 'SELECT 1 pairs',
    networkFloor: 'SELECT 1 pairs',
    b1,
    b2: [],
    b2Reference: 'any',
  };
  show(uncontendedTable(partial));

  const lockRows = contenders.filter((c) => c.excludes);
  log(
    `postgres B2: ${lockRows.length} contenders × ${options.contendedMs / 1000} s ` +
      `in ${options.contendedRounds} interleaved round(s), after ${options.contendedWarmupMs / 1000} s of warm-up each`,
  );
  const b2 = await runContendedInterleaved(lockRows, {
    clients: CLIENTS,
    durationMs: options.contendedMs,
    rounds: options.contendedRounds,
    warmupMs: options.contendedWarmupMs,
    drainMs: 15_000,
    key: `${prefix}b2/`,
    counterKey: `${prefix}b2/counter/`,
    counter: postgresCounter(url),
    onResult: (result) =>
      log(
        `postgres B2: ${result.name.padEnd(28)} ${Math.round(result.opsPerSec)} ops/s, ` +
          `p99 wait ${result.waitP99Ms.toFixed(1)} ms${result.correct ? '' : '  *** COUNTER CHECK FAILED ***'}`,
      ),
  });
  show(contendedTable({ ...partial, b2 }));

  // B3 without session mode: 64 holdings at once would each take a connection of their own.
  const manyKeyRows = contenders.filter((c) => !c.name.includes('session'));
  log(
    `postgres B3: ${options.manyKeysRounds} round(s) of ${options.manyKeysRoundMs} ms per contender`,
  );
  const b3 = await runManyKeys(manyKeyRows, {
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
