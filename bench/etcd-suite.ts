/**
 * The etcd benchmarks (issue 5): B1 and B2 on one etcd member for distlock, etcd3's `Lock`
 * (retried by the harness) and the put + delete floor.
 */
import type { Contender } from './contenders/contender.js';
import { etcdBackend } from '../src/backends/etcd/index.js';
import { distlockVariants } from './contenders/distlock.js';
import { etcdReleaseWriteCeiling } from './contenders/etcd-ceiling.js';
import { connectEtcd } from './contenders/etcd-connection.js';
import { etcd3Lock, etcdPutDelete, etcdTxnDelete } from './contenders/etcd-floor-and-peer.js';
import type { BenchOptions } from './options.js';
import { contendedTable, uncontendedTable, type StoreResults } from './report.js';
import { runContendedInterleaved } from './scenarios/contended.js';
import { etcdCounter } from './scenarios/counter.js';
import { runUncontended } from './scenarios/uncontended.js';
import type { Table } from './table.js';

const TTL_MS = 10_000;
const CLIENTS = 8;

/** distlock's etcd rows: one lock manager and backend (one session) per client, own connection. */
function distlockContenders(port: number): Promise<Contender[]> {
  const open = async () => {
    const client = await connectEtcd(port);
    return { backend: etcdBackend({ client }), close: async () => client.close() };
  };
  return distlockVariants(open, TTL_MS);
}

/** Run B1 and B2 on etcd at `port`, showing each table as soon as it is ready. */
export async function benchEtcd(
  port: number,
  options: BenchOptions,
  show: (table: Table) => void,
  log: (line: string) => void,
): Promise<StoreResults> {
  const prefix = `bench/${Date.now()}/`;
  const distlockRows = await distlockContenders(port);
  const contenders: Contender[] = [
    etcdPutDelete(port),
    etcdTxnDelete(port),
    ...distlockRows,
    etcd3Lock(port, {
      ttlSeconds: TTL_MS / 1000,
      tuned: false,
      backoff: { firstMs: 10, maxMs: 200 },
    }),
    etcd3Lock(port, { ttlSeconds: TTL_MS / 1000, tuned: true, backoff: { firstMs: 5, maxMs: 50 } }),
  ];
  // B2 only: it is no lock in etcd, and its B1 would only time one delete.
  const ceiling = etcdReleaseWriteCeiling(port);
  for (const contender of [...contenders, ceiling])
    log(`etcd: ${contender.name.padEnd(28)} ${contender.settings}`);

  const partial: StoreResults = {
    store: 'etcd',
    floor: 'put + delete',
    b1: [],
    b2: [],
    b2Reference: 'any',
    b2Bound: { row: ceiling.name, label: 'ceiling' },
  };
  let results = partial;
  if (options.scenarios.has('b1')) {
    log(
      `etcd B1: ${contenders.length} contenders interleaved for ${options.uncontendedMs / 1000} s`,
    );
    const b1 = await runUncontended(contenders, {
      budgetMs: options.uncontendedMs,
      chunkOps: 10,
      warmupOps: options.quick ? 10 : 50,
      keyPrefix: prefix,
      onProgress: log,
    });
    results = { ...results, b1 };
    show(uncontendedTable(results));
  }

  if (options.scenarios.has('b2')) {
    const lockRows = [...contenders.filter((c) => c.excludes), ceiling];
    log(
      `etcd B2: ${lockRows.length} contenders × ${options.contendedMs / 1000} s ` +
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
      counter: etcdCounter(port),
      onResult: (result) =>
        log(
          `etcd B2: ${result.name.padEnd(28)} ${Math.round(result.opsPerSec)} ops/s, ` +
            `p99 wait ${result.waitP99Ms.toFixed(1)} ms${result.correct ? '' : '  *** COUNTER CHECK FAILED ***'}`,
        ),
    });
    results = { ...results, b2 };
    show(contendedTable(results));
  }
  return results;
}
