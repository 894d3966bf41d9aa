/**
 * The in-memory backend: locks held in one process's memory, with the exact semantics of the
 * backend contract — FIFO handoff to waiters on release or expiry, fences that never repeat,
 * read-write locks and semaphores. Use it for single-process apps and as the test double in your
 * own tests (give several backends one `MemoryStore` to simulate several clients).
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { memoryBackend } from 'distlock/memory';
 * const locks = createLocks({ backend: memoryBackend() });
 * ```
 */
import type {
  AcquireRequest,
  AcquireResult,
  ExtendResult,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  ReleaseOutcome,
  Unwatch,
} from '../../core/backend.js';
import { LockClosedError } from '../../core/errors.js';
import { claimOf } from '../../core/kinds.js';
import { MemoryStore } from './store.js';

export { MemoryStore } from './store.js';

/** Options of {@link memoryBackend}. */
export interface MemoryBackendOptions {
  /**
   * The store to use; pass one store to several backends to simulate several clients.
   * @default a new store private to this backend
   */
  readonly store?: MemoryStore;
}

/** Create an in-memory backend (one process; FIFO; exact). */
export function memoryBackend(options: MemoryBackendOptions = {}): LockBackend {
  const store = options.store ?? new MemoryStore();
  let closed = false;
  const pending = new Set<() => void>();

  const check = (signal?: AbortSignal) => {
    if (closed) throw new LockClosedError('memory backend');
    signal?.throwIfAborted();
  };

  return {
    name: 'memory',
    capabilities: { fencing: true, notify: true, fifo: true, crossProcess: false, shared: true },

    async tryAcquire(request: AcquireRequest, op?: OperationOptions): Promise<AcquireResult> {
      check(op?.signal);
      return store.tryTake(request);
    },

    acquire(request, op) {
      return new Promise((resolve, reject) => {
        check(op.signal);
        const taken = store.tryTake(request);
        op.onQueued?.();
        if (taken.acquired) {
          resolve(taken);
          return;
        }
        const onAbort = () => {
          dequeue();
          pending.delete(onClose);
          reject(op.signal.reason);
        };
        const onClose = () => {
          dequeue();
          op.signal.removeEventListener('abort', onAbort);
          reject(new LockClosedError('memory backend'));
        };
        const dequeue = store.enqueue(request.key, {
          ...claimOf(request),
          request,
          grant: (result) => {
            op.signal.removeEventListener('abort', onAbort);
            pending.delete(onClose);
            resolve(result);
          },
        });
        op.signal.addEventListener('abort', onAbort, { once: true });
        pending.add(onClose);
      });
    },

    async extend(lease: LeaseRef, ttlMs: number, op?: OperationOptions): Promise<ExtendResult> {
      check(op?.signal);
      const outcome = store.extend(lease.key, lease.token, ttlMs);
      return outcome === 'extended' ? { extended: true } : { extended: false, reason: outcome };
    },

    async release(lease: LeaseRef, op?: OperationOptions): Promise<ReleaseOutcome> {
      check(op?.signal);
      return store.release(lease.key, lease.token);
    },

    async inspect(key: string, op?: OperationOptions): Promise<LockInfo | null> {
      check(op?.signal);
      return store.info(key);
    },

    async watch(key: string, onChange: () => void, op?: OperationOptions): Promise<Unwatch> {
      check(op?.signal);
      return store.watch(key, onChange);
    },

    async list(prefix: string, op?: OperationOptions): Promise<LockInfo[]> {
      check(op?.signal);
      return store
        .keys()
        .filter((key) => key.startsWith(prefix))
        .map((key) => store.info(key))
        .filter((info): info is LockInfo => info !== null);
    },

    async forceRelease(key: string, op?: OperationOptions): Promise<boolean> {
      check(op?.signal);
      return store.forceRelease(key);
    },

    async close(): Promise<void> {
      closed = true;
      for (const onClose of [...pending]) onClose();
      pending.clear();
    },
  };
}
