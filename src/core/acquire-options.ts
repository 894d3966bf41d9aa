/**
 * The options of the manager's calls and the shapes they return, apart from the manager itself so
 * that the read-write lock and the semaphore (which the manager makes) can name them without
 * importing the manager.
 */
import type { HolderInfo, LockInfo, LockMode } from './backend.js';
import type { Claim } from './kinds.js';
import type { Lease } from './lease.js';

/**
 * What the store says about a key, as the manager returns it: {@link LockInfo} with `mode` and
 * `holders` always filled in (for backends that report only one holder, from that holder).
 */
export type LockState = LockInfo & {
  readonly mode: LockMode;
  readonly holders: readonly HolderInfo[];
};

/**
 * @internal What the read-write lock and the semaphore call on the manager that made them: the
 * manager's own acquire paths, with a claim other than the mutex's.
 */
export interface KindOperations {
  acquire(key: string, options: AcquireOptions, claim: Claim): Promise<Lease>;
  tryAcquire(key: string, options: TryAcquireOptions, claim: Claim): Promise<Lease | null>;
  withLease<T>(
    key: string,
    fn: (lease: Lease) => Promise<T> | T,
    options: WithLockOptions,
    claim: Claim,
  ): Promise<T>;
  inspect(key: string): Promise<LockState | null>;
}

/** Options of `LockManager.acquire`. */
export interface AcquireOptions {
  /** Lease time-to-live. @default the manager's `ttlMs` */
  readonly ttlMs?: number;
  /** How long to wait for a held lock; 0 tries once. @default the manager's `waitMs` */
  readonly waitMs?: number;
  /** Cancels the wait; the promise rejects with `signal.reason` and nothing is left held. */
  readonly signal?: AbortSignal;
  /** Use this token instead of generating one (e.g. to make a retried request idempotent). */
  readonly token?: string;
}

/** Options of `LockManager.tryAcquire`. */
export type TryAcquireOptions = Omit<AcquireOptions, 'waitMs'>;

/** Options of `LockManager.withLock`. */
export interface WithLockOptions extends AcquireOptions {
  /** How often the lease is renewed while `fn` runs. @default a third of `ttlMs` */
  readonly renewEveryMs?: number;
}
