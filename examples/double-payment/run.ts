/**
 * One run of the story: fill a fresh store, hand the payments to the workers all at once, wait
 * for them to finish and check the invariants.
 */
import { join } from 'node:path';
import { checkInvariants, type InvariantResult } from './invariants.js';
import type { Payment } from './model.js';
import type { RunConfig, WorkerStats } from './protocol.js';
import { ReceiptBook } from './receipts.js';
import type { Scenario } from './scenario.js';
import { createLedger, type LedgerLocation } from './ledger.js';
import type { WorkerPool } from './worker-pool.js';

/** How one run is set up. */
export interface RunSpec {
  /** Short id, e.g. `without-lock`. */
  readonly id: string;
  /** Column heading for people, e.g. `without lock`. */
  readonly label: string;
  /** Whether this run is meant to be safe (it breaks the demo if it is not). */
  readonly expectSafe: boolean;
  readonly scenario: Scenario;
  /** How the workers work, except where the ledger and receipts are. */
  readonly worker: Omit<RunConfig, 'ledger' | 'receiptsDir' | 'freeze'>;
  /**
   * A PostgreSQL URL and table for the accounts.
   * @default the accounts are files under `workDir`
   */
  readonly postgresLedger?: { readonly url: string; readonly table: string };
  /**
   * Freeze one worker mid-payment until its lease (of this TTL) has expired and been taken over.
   * @default no freeze
   */
  readonly freezeLeaseTtlMs?: number;
  /** A fresh directory for this run's receipts (and its accounts, unless in PostgreSQL). */
  readonly workDir: string;
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** Called after every processed payment. */
  readonly onProgress?: (processed: number, total: number) => void;
}

/** What one run did and which invariants held. */
export interface RunResult {
  readonly id: string;
  readonly label: string;
  readonly locking: boolean;
  readonly expectSafe: boolean;
  readonly workers: number;
  readonly payments: number;
  /** From handing out the payments to the last worker finishing. */
  readonly wallMs: number;
  readonly paymentsPerSecond: number;
  /** Store accesses refused because they carried a stale fence (each payment was retried). */
  readonly fenceRejections: number;
  /** Payments abandoned because the lease was lost before the write (each was retried). */
  readonly leaseLosses: number;
  /** Mean time a payment waited for its account's lock. */
  readonly meanLockWaitMs: number;
  readonly invariants: readonly InvariantResult[];
  /** How many invariants are broken (0 when all hold). */
  readonly brokenInvariants: number;
}

function sum(stats: readonly WorkerStats[], field: keyof Omit<WorkerStats, 'workerId'>): number {
  return stats.reduce((total, s) => total + s[field], 0);
}

/** Run the story once on `pool` and check the invariants. */
export async function runOnce(pool: WorkerPool, spec: RunSpec): Promise<RunResult> {
  const { scenario } = spec;
  const ledger: LedgerLocation = spec.postgresLedger
    ? { kind: 'postgres', ...spec.postgresLedger }
    : { kind: 'files', dir: join(spec.workDir, 'store') };
  const receiptsDir = join(spec.workDir, 'receipts');
  const store = await createLedger(ledger, scenario.accounts);

  // Payments are dealt round-robin: worker i gets payments i, i + n, i + 2n, …
  const shares: Payment[][] = Array.from({ length: pool.size }, () => []);
  scenario.payments.forEach((payment, i) => shares[i % pool.size]?.push(payment));
  // The frozen payment is worker 0's second, so the others still have work that needs its lock.
  const frozenPaymentId = shares[0]?.[1]?.id;
  const run: RunConfig = {
    ...spec.worker,
    ledger,
    receiptsDir,
    ...(spec.freezeLeaseTtlMs === undefined || frozenPaymentId === undefined
      ? {}
      : { freeze: { paymentId: frozenPaymentId, leaseTtlMs: spec.freezeLeaseTtlMs } }),
  };

  let processed = 0;
  const total = scenario.payments.length;
  const startedAt = performance.now();
  const stats = await pool.run(
    (workerId) => ({ run, payments: shares[workerId] ?? [] }),
    () => spec.onProgress?.(++processed, total),
    spec.timeoutMs,
  );
  const wallMs = performance.now() - startedAt;

  const finalAccounts = await store.readAll();
  await store.close({ drop: true });
  const invariants = checkInvariants({
    initialAccounts: scenario.accounts,
    payments: scenario.payments,
    finalAccounts,
    receipts: await new ReceiptBook(receiptsDir).readAll(),
  });
  return {
    id: spec.id,
    label: spec.label,
    locking: spec.worker.locking,
    expectSafe: spec.expectSafe,
    workers: pool.size,
    payments: total,
    wallMs,
    paymentsPerSecond: total / (wallMs / 1_000),
    fenceRejections: sum(stats, 'fenceRejections'),
    leaseLosses: sum(stats, 'leaseLosses'),
    meanLockWaitMs: spec.worker.locking ? sum(stats, 'lockWaitMs') / Math.max(1, total) : 0,
    invariants,
    brokenInvariants: invariants.filter((invariant) => invariant.broken > 0).length,
  };
}
