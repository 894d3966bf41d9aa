/**
 * The Azure Blob Storage benchmarks (issue 17): B1 and B2 for distlock on Azurite, beside the
 * floors of the round trips a blob-lease lock needs (no peer library exists for Node). Reported,
 * no ratio target. Azurite is a local emulator (Node, in memory): its figures are round trips to
 * it and its own work, not Azure's latency.
 */
import { azureBlobBackend } from '../src/backends/azure-blob/index.js';
import { azureCounter, azureFloors } from './contenders/azure-blob.js';
import type { Contender } from './contenders/contender.js';
import { distlockVariants } from './contenders/distlock.js';
import type { BenchOptions } from './options.js';
import { contendedTable, uncontendedTable, type StoreResults } from './report.js';
import { runContendedInterleaved } from './scenarios/contended.js';
import { runUncontended } from './scenarios/uncontended.js';
import type { Table } from './table.js';

/** Azure's shortest blob lease. */
const TTL_MS = 15_000;
const CLIENTS = 8;
const CONTAINER = 'bench';

/** Run B1 and B2 on Azurite (`connectionString`), showing each table as soon as it is ready. */
export async function benchAzureBlob(
  connectionString: string,
  options: BenchOptions,
  show: (table: Table) => void,
  log: (line: string) => void,
): Promise<StoreResults> {
  const prefix = `bench/${Date.now()}/`;
  const distlockRows = await distlockVariants(
    async () => ({
      backend: azureBlobBackend({ connectionString, containerName: CONTAINER }),
      close: async () => undefined,
    }),
    TTL_MS,
  );
  const contenders: Contender[] = [...azureFloors(connectionString, CONTAINER), ...distlockRows];
  for (const contender of contenders)
    log(`azure-blob: ${contender.name.padEnd(28)} ${contender.settings}`);

  log(
    `azure-blob B1: ${contenders.length} contenders interleaved for ${options.uncontendedMs / 1000} s`,
  );
  const b1 = await runUncontended(contenders, {
    budgetMs: options.uncontendedMs,
    chunkOps: 10,
    warmupOps: options.quick ? 20 : 100,
    keyPrefix: prefix,
    onProgress: log,
  });
  const partial: StoreResults = {
    store: 'azure-blob',
    floor: 'fenced lease floor',
    networkFloor: 'lease pairs',
    b1,
    b2: [],
    b2Reference: 'any',
  };
  show(uncontendedTable(partial));

  const lockRows = contenders.filter((c) => c.excludes);
  log(
    `azure-blob B2: ${lockRows.length} contenders × ${options.contendedMs / 1000} s ` +
      `in ${options.contendedRounds} interleaved round(s), after ${options.contendedWarmupMs / 1000} s of warm-up each`,
  );
  const b2 = await runContendedInterleaved(lockRows, {
    clients: CLIENTS,
    durationMs: options.contendedMs,
    rounds: options.contendedRounds,
    warmupMs: options.contendedWarmupMs,
    drainMs: 20_000,
    key: `${prefix}b2/`,
    counterKey: `${prefix}b2/counter/`,
    counter: azureCounter(connectionString, CONTAINER),
    onResult: (result) =>
      log(
        `azure-blob B2: ${result.name.padEnd(28)} ${Math.round(result.opsPerSec)} ops/s, ` +
          `p99 wait ${result.waitP99Ms.toFixed(1)} ms${result.correct ? '' : '  *** COUNTER CHECK FAILED ***'}`,
      ),
  });
  const results: StoreResults = { ...partial, b2 };
  show(contendedTable(results));
  return results;
}
