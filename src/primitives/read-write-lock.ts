/**
 * A read-write lock: many readers at once, or one writer alone, on one key of any backend with
 * shared holdings. Readers and writers get leases like a mutex's (TTL, token-checked extend and
 * release, `signal` on loss, `await using`); the writer side is the same lock as the mutex on the
 * key. Writers do not starve: once a writer waits, readers that arrive after it wait behind it.
 *
 * Fences: a writer's fence is greater than every fence issued on the key before it, readers'
 * included; a reader's is greater than every earlier writer's. A resource that remembers the
 * highest writer fence it has seen can therefore refuse a stale writer, and a reader that started
 * before the latest writer.
 */
import type { Lease } from '../core/lease.js';
import { EXCLUSIVE, READER } from '../core/kinds.js';
import type {
  AcquireOptions,
  KindOperations,
  LockState,
  TryAcquireOptions,
  WithLockOptions,
} from '../core/acquire-options.js';

/**
 * Made by `locks.readWrite(key)`.
 *
 * @example
 * ```ts
 * const doc = locks.readWrite('doc:7');
 * {
 *   await using reading = await doc.read({ waitMs: 2_000 });
 *   show(await load(7));
 * }
 * await doc.withWrite(async (lease) => save(7, edit, { fence: lease.fence }));
 * ```
 */
export class ReadWriteLock {
  /** The key as the caller passed it. */
  readonly key: string;
  readonly #operations: KindOperations;

  /** @internal Made by the lock manager. */
  constructor(key: string, operations: KindOperations) {
    this.key = key;
    this.#operations = operations;
  }

  /**
   * Take a read share, waiting up to `waitMs` while a writer holds the key or waits before us.
   * @throws as `locks.acquire` does.
   */
  read(options: AcquireOptions = {}): Promise<Lease> {
    return this.#operations.acquire(this.key, options, READER);
  }

  /** One attempt at a read share: the lease, or `null` while a writer holds or waits. */
  tryRead(options: TryAcquireOptions = {}): Promise<Lease | null> {
    return this.#operations.tryAcquire(this.key, options, READER);
  }

  /**
   * Take the key exclusively (no reader, no other writer), waiting up to `waitMs`.
   * @throws as `locks.acquire` does.
   */
  write(options: AcquireOptions = {}): Promise<Lease> {
    return this.#operations.acquire(this.key, options, EXCLUSIVE);
  }

  /** One attempt at the write lock: the lease, or `null` while anyone holds the key. */
  tryWrite(options: TryAcquireOptions = {}): Promise<Lease | null> {
    return this.#operations.tryAcquire(this.key, options, EXCLUSIVE);
  }

  /** Run `fn` holding a read share, renewed while it runs, as `locks.withLock` does. */
  withRead<T>(fn: (lease: Lease) => Promise<T> | T, options: WithLockOptions = {}): Promise<T> {
    return this.#operations.withLease(this.key, fn, options, READER);
  }

  /** Run `fn` holding the write lock, renewed while it runs, as `locks.withLock` does. */
  withWrite<T>(fn: (lease: Lease) => Promise<T> | T, options: WithLockOptions = {}): Promise<T> {
    return this.#operations.withLease(this.key, fn, options, EXCLUSIVE);
  }

  /** The key's holders (readers or the writer), or `null` when free. */
  inspect(): Promise<LockState | null> {
    return this.#operations.inspect(this.key);
  }
}
