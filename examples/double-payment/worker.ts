/**
 * A payment worker: a separate OS process, started by the demo. For each run it receives its
 * share of the payments over IPC and, for each payment, reads the account, allocates the payment
 * to the oldest unpaid orders, confirms it with the payment provider, writes the account back and
 * issues a receipt.
 *
 * The only difference between the broken run and the safe run is in {@link PaymentWorker}'s
 * `#receivePayment`: with locking on, read → confirm → write runs inside
 * `locks.withLock('account:<id>')`, and the store is given the lease's fence. The code never names
 * a backend: `openBackend(url)` picks one, and everything else only sees `createLocks`.
 */
import {
  createLocks,
  LockLostError,
  type Lease,
  type LockBackend,
  type LockManager,
} from '../../src/index.js';
import { openBackend } from '../../src/backend-url.js';
import { allocatePayment } from './allocate.js';
import type { Payment } from './model.js';
import { PaymentProvider } from './payment-provider.js';
import {
  WORKER_CONFIG_ENV,
  type FromWorker,
  type RunConfig,
  type ToWorker,
  type WorkerConfig,
  type WorkerStats,
} from './protocol.js';
import { ReceiptBook } from './receipts.js';
import type { Ledger } from './ledger.js';
import { openLedger } from './ledger.js';
import { StaleFenceError } from './store.js';

/** A payment whose lease was lost or whose write was fenced off is retried, a few times at most. */
const MAX_ATTEMPTS_PER_PAYMENT = 5;

/** Processes one run's payments, one after the other. */
class PaymentWorker {
  readonly #workerId: number;
  readonly #run: RunConfig;
  readonly #locks: LockManager | undefined;
  readonly #store: Ledger;
  readonly #receipts: ReceiptBook;
  readonly #provider: PaymentProvider;
  #stats: WorkerStats;
  #frozeOnce = false;

  constructor(workerId: number, run: RunConfig, locks: LockManager | undefined, store: Ledger) {
    this.#workerId = workerId;
    this.#run = run;
    this.#locks = locks;
    this.#store = store;
    this.#receipts = new ReceiptBook(run.receiptsDir);
    this.#provider = new PaymentProvider(run.providerDelayMs);
    this.#stats = { workerId, processed: 0, fenceRejections: 0, leaseLosses: 0, lockWaitMs: 0 };
  }

  get stats(): WorkerStats {
    return this.#stats;
  }

  /** Process one payment, retrying when the lock was lost or the store fenced off our write. */
  async process(payment: Payment): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#receivePayment(payment);
        this.#count('processed');
        return;
      } catch (error) {
        // Both errors come before the write: nothing of this payment was saved, so try again.
        const retry = error instanceof StaleFenceError || error instanceof LockLostError;
        if (!retry || attempt >= MAX_ATTEMPTS_PER_PAYMENT) throw error;
        this.#count(error instanceof StaleFenceError ? 'fenceRejections' : 'leaseLosses');
      }
    }
  }

  async #receivePayment(payment: Payment): Promise<void> {
    if (this.#locks === undefined) {
      // The bug: nothing stops another worker from reading the same account meanwhile.
      await this.#applyPayment(payment);
      return;
    }
    const askedAt = Date.now();
    await this.#locks.withLock(
      `account:${payment.accountId}`,
      async (lease) => {
        this.#add('lockWaitMs', Date.now() - askedAt);
        await this.#applyPayment(payment, lease);
      },
      this.#freezesOn(payment) ? { ttlMs: this.#run.freeze?.leaseTtlMs } : {},
    );
  }

  /** Read → allocate → confirm with the provider → write → receipt. */
  async #applyPayment(payment: Payment, lease?: Lease): Promise<void> {
    const fence = lease?.fence;
    const account = await this.#store.read(payment.accountId, { fence });
    const { account: updated, allocations, creditCents } = allocatePayment(account, payment);
    await this.#provider.confirm(payment);

    // Still ours? If the lease was lost while the provider answered, do not write.
    lease?.signal.throwIfAborted();
    if (lease && this.#freezesOn(payment)) {
      this.#frozeOnce = true;
      this.#freezeUntilTakenOver(payment.accountId, lease);
    }
    // Even so, a pause right here (after the check) can outlive the lease: only the fence,
    // checked by the store itself, protects the write below from such a stale holder.
    await this.#store.write(updated, { fence });

    await this.#receipts.issue({
      paymentId: payment.id,
      accountId: payment.accountId,
      workerId: this.#workerId,
      allocations,
      creditCents,
    });
  }

  /**
   * Fault injection: block the whole process (timers included, like a stop-the-world GC pause or
   * a suspended VM) until the lease has expired and another worker has taken the account's lock.
   */
  #freezeUntilTakenOver(accountId: string, lease: Lease): void {
    const giveUpAt = Date.now() + 10 * (this.#run.freeze?.leaseTtlMs ?? this.#run.ttlMs);
    this.#store.freezeUntilFenceAbove(accountId, lease.fence, giveUpAt);
  }

  /** Fault injection: freeze on this payment (once: not again when it is retried)? */
  #freezesOn(payment: Payment): boolean {
    return payment.id === this.#run.freeze?.paymentId && !this.#frozeOnce;
  }

  #count(counter: 'processed' | 'fenceRejections' | 'leaseLosses'): void {
    this.#add(counter, 1);
  }

  #add(counter: keyof Omit<WorkerStats, 'workerId'>, amount: number): void {
    this.#stats = { ...this.#stats, [counter]: this.#stats[counter] + amount };
  }
}

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('worker.ts is started by main.ts (fork)'));
    process.send(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Messages from the main process, in order. The `message` listener stays registered for the
 * worker's whole life on purpose: it keeps the IPC channel, and so this process, alive.
 */
function inbox(): () => Promise<ToWorker> {
  const queued: ToWorker[] = [];
  let waiting: ((message: ToWorker) => void) | undefined;
  process.on('message', (message: ToWorker) => {
    if (waiting) waiting(message);
    else queued.push(message);
    waiting = undefined;
  });
  return () => {
    const next = queued.shift();
    return next ? Promise.resolve(next) : new Promise((resolve) => (waiting = resolve));
  };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? 'null') as WorkerConfig | null;
  if (config === null) throw new Error(`worker.ts needs ${WORKER_CONFIG_ENV}; run main.ts instead`);
  const nextMessage = inbox();
  const backend: LockBackend = await openBackend(config.backendUrl);
  try {
    await send({ type: 'ready' });
    for (let message = await nextMessage(); message.type === 'run'; message = await nextMessage()) {
      const { run, payments } = message;
      const locks = run.locking
        ? createLocks({ backend, prefix: run.keyPrefix, ttlMs: run.ttlMs, waitMs: run.waitMs })
        : undefined;
      const store = await openLedger(run.ledger);
      const worker = new PaymentWorker(config.workerId, run, locks, store);
      try {
        for (const payment of payments) {
          await worker.process(payment);
          await send({ type: 'processed', paymentId: payment.id });
        }
      } finally {
        await store.close();
      }
      await send({ type: 'done', stats: worker.stats });
    }
  } finally {
    await backend.close();
  }
}

main().then(
  () => process.disconnect?.(),
  async (error: unknown) => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    await send({ type: 'failed', message }).catch(() => undefined);
    process.exitCode = 1;
    process.disconnect?.();
  },
);
