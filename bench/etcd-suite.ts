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
import { runB2 } from './scenarios/contended.js';
import { etcdCounter } from './scenarios/counter.js';
import { runB1 } from './scenarios/uncontended.js';
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
    const b1 = await runB1(
      'etcd',
      contenders,
      options.uncontendedMs,
      {
        chunkOps: 10,
        warmupOps: options.quick ? 10 : 50,
        keyPrefix: prefix,
      },
      log,
    );
    results = { ...results, b1 };
    show(uncontendedTable(results));
  }

  if (options.scenarios.has('b2')) {
    const lockRows = [...contenders.filter((c) => c.excludes), ceiling];
    const b2 = await runB2(
      'etcd',
      lockRows,
      { ...options, clients: CLIENTS },
      { key: `${prefix}b2/`, counterKey: `${prefix}b2/counter/`, counter: etcdCounter(port) },
      log,
    );
    results = { ...results, b2 };
    show(contendedTable(results));
  }
  return results;
}
