/**
 * A counting semaphore: at most `limit` holders of one key at once, on any backend with shared
 * holdings. Each permit is a lease like a mutex's (TTL, token-checked extend and release, `signal`
 * on loss, `await using`), so a crashed holder's permit comes back when its TTL ends. Waiters are
 * served in arrival order on backends that queue (memory, Redis, etcd).
 *
 * Every user of a key must agree on its limit: a call with another limit while permits are held
 * or awaited is refused with `LimitMismatchError`. A mutex (or a writer) on the same key excludes
 * every permit, and the permits exclude it.
 */
import type { Lease } from '../core/lease.js';
import { permit, validateLimit, type Claim } from '../core/kinds.js';
import type {
  AcquireOptions,
  KindOperations,
  LockState,
  TryAcquireOptions,
  WithLockOptions,
} from '../core/acquire-options.js';
import { InvalidArgumentError } from '../core/errors.js';

/** Options of `locks.semaphore(key, options)`. */
export interface SemaphoreOptions {
  /** How many holders the key may have at once: an integer from 1 to 2^31-1. Required. */
  readonly limit: number;
}

/**
 * Made by `locks.semaphore(key, { limit })`.
 *
 * @example
 * ```ts
 * const exports = locks.semaphore('exports', { limit: 3 });
 * const permit = await exports.acquire({ waitMs: 60_000 });
 * try {
 *   await runExport({ signal: permit.signal });
 * } finally {
 *   await permit.release();
 * }
 * ```
 */
export class Semaphore {
  /** The key as the caller passed it. */
  readonly key: string;
  /** How many permits the key has. */
  readonly limit: number;
  readonly #claim: Claim;
  readonly #operations: KindOperations;

  /** @internal Made by the lock manager. */
  constructor(key: string, options: SemaphoreOptions, operations: KindOperations) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'must be an object with a `limit`');
    }
    this.key = key;
    this.limit = validateLimit(options.limit);
    this.#claim = permit(this.limit);
    this.#operations = operations;
  }

  /**
   * Take a permit, waiting up to `waitMs` while all `limit` are held (or others wait before us).
   * @throws as `locks.acquire` does, and `LimitMismatchError` if the key is used with another limit.
   */
  acquire(options: AcquireOptions = {}): Promise<Lease> {
    return this.#operations.acquire(this.key, options, this.#claim);
  }

  /** One attempt at a permit: the lease, or `null` while none is free. */
  tryAcquire(options: TryAcquireOptions = {}): Promise<Lease | null> {
    return this.#operations.tryAcquire(this.key, options, this.#claim);
  }

  /** Run `fn` holding a permit, renewed while it runs, as `locks.withLock` does. */
  withPermit<T>(fn: (lease: Lease) => Promise<T> | T, options: WithLockOptions = {}): Promise<T> {
    return this.#operations.withLease(this.key, fn, options, this.#claim);
  }

  /** The permits' holders, or `null` when none is held. */
  inspect(): Promise<LockState | null> {
    return this.#operations.inspect(this.key);
  }
}
