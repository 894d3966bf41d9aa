/**
 * What the demo's main process and its worker processes say to each other over the IPC channel
 * of `child_process.fork`.
 *
 * The same worker processes serve every run (starting a TypeScript process costs a second or more
 * on a busy machine); each run tells them how to work in its `run` message.
 */
import type { LedgerLocation } from './ledger.js';
import type { Payment } from './model.js';

/** The environment variable that carries a worker's {@link WorkerConfig} as JSON. */
export const WORKER_CONFIG_ENV = 'DISTLOCK_DEMO_WORKER';

/** What a worker process is started with, in {@link WORKER_CONFIG_ENV}. */
export interface WorkerConfig {
  readonly workerId: number;
  /** Which lock backend to open, e.g. `file:///tmp/locks`, `redis://127.0.0.1:6379`. */
  readonly backendUrl: string;
}

/** How to work during one run. */
export interface RunConfig {
  /** Where the accounts live (files in a directory, or a PostgreSQL table). */
  readonly ledger: LedgerLocation;
  /** Directory of the receipt files. */
  readonly receiptsDir: string;
  /** Take `account:<id>` around each payment (the fix), or not (the bug). */
  readonly locking: boolean;
  /** Key prefix, so that runs sharing one backend do not see each other's locks. */
  readonly keyPrefix: string;
  readonly ttlMs: number;
  readonly waitMs: number;
  /** The payment provider answers after a uniformly random delay in this range. */
  readonly providerDelayMs: { readonly min: number; readonly max: number };
  /**
   * Fault injection: while processing payment `paymentId`, freeze (block the event loop, like a
   * long GC pause) between the last lease check and the write, until another worker has taken the
   * lock. That payment's lease lasts only `leaseTtlMs`, so the demo need not wait long for it.
   */
  readonly freeze?: { readonly paymentId: string; readonly leaseTtlMs: number };
}

/** Counters a worker reports when it has processed its share of a run's payments. */
export interface WorkerStats {
  readonly workerId: number;
  readonly processed: number;
  /** Writes (or reads) the store refused because their fence was stale; each was retried. */
  readonly fenceRejections: number;
  /** Payments abandoned mid-way because the lease was lost; each was retried. */
  readonly leaseLosses: number;
  /** Total time spent waiting for the account lock. */
  readonly lockWaitMs: number;
}

/** Main → worker: process these payments, or exit. */
export type ToWorker =
  | { readonly type: 'run'; readonly run: RunConfig; readonly payments: readonly Payment[] }
  | { readonly type: 'exit' };

/** Worker → main. */
export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'processed'; readonly paymentId: string }
  | { readonly type: 'done'; readonly stats: WorkerStats }
  | { readonly type: 'failed'; readonly message: string };
