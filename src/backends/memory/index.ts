/**
 * The in-memory backend: locks held in one process's memory, with the exact semantics of the
 * backend contract — FIFO handoff to waiters on release or expiry, fences that never repeat.
 * Use it for single-process apps and as the test double in your own tests.
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

interface Holding {
  readonly token: string;
  readonly fence: bigint;
  expiresAt: number;
  timer: ReturnType<typeof setTimeout>;
}

interface Waiter {
  readonly request: AcquireRequest;
  readonly grant: (result: AcquireResult & { acquired: true }) => void;
}

/**
 * The state several memory backends can share, so that each simulated client gets its own backend
 * (and its own `close`) over one store.
 */
export class MemoryStore {
  readonly #holdings = new Map<string, Holding>();
  readonly #fences = new Map<string, bigint>();
  readonly #queues = new Map<string, Waiter[]>();
  readonly #watchers = new Map<string, Set<() => void>>();

  /** The live holding of `key`, dropping it if its TTL has passed. */
  holding(key: string): Holding | undefined {
    const holding = this.#holdings.get(key);
    if (holding && holding.expiresAt <= Date.now()) {
      this.#free(key);
      return this.#holdings.get(key); // a queued waiter may have been handed the lock
    }
    return holding;
  }

  take(key: string, request: AcquireRequest): bigint {
    const fence = (this.#fences.get(key) ?? 0n) + 1n;
    this.#fences.set(key, fence);
    const holding: Holding = {
      token: request.token,
      fence,
      expiresAt: 0,
      timer: undefined as never,
    };
    this.#holdings.set(key, holding);
    this.setTtl(key, holding, request.ttlMs);
    return fence;
  }

  setTtl(key: string, holding: Holding, ttlMs: number): void {
    clearTimeout(holding.timer);
    holding.expiresAt = Date.now() + ttlMs;
    holding.timer = setTimeout(() => {
      if (this.#holdings.get(key) === holding) this.#free(key);
    }, ttlMs);
    holding.timer.unref?.();
  }

  /** Remove the holding and hand the key to the longest waiter, if any. */
  #free(key: string): void {
    const holding = this.#holdings.get(key);
    if (holding) clearTimeout(holding.timer);
    this.#holdings.delete(key);
    const queue = this.#queues.get(key);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.#queues.delete(key);
    if (next) {
      const startedAt = Date.now();
      const fence = this.take(key, next.request);
      next.grant({ acquired: true, fence, startedAt });
    }
    for (const watcher of this.#watchers.get(key) ?? []) queueMicrotask(watcher);
  }

  release(key: string, token: string): ReleaseOutcome {
    const holding = this.holding(key);
    if (!holding) return 'expired';
    if (holding.token !== token) return 'not-owner';
    this.#free(key);
    return 'released';
  }

  forceRelease(key: string): boolean {
    if (!this.holding(key)) return false;
    this.#free(key);
    return true;
  }

  enqueue(key: string, waiter: Waiter): () => void {
    let queue = this.#queues.get(key);
    if (!queue) this.#queues.set(key, (queue = []));
    queue.push(waiter);
    return () => {
      const current = this.#queues.get(key);
      const index = current?.indexOf(waiter) ?? -1;
      if (current && index >= 0) current.splice(index, 1);
      if (current?.length === 0) this.#queues.delete(key);
    };
  }

  queueLength(key: string): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  info(key: string): LockInfo | null {
    const holding = this.holding(key);
    if (!holding) return null;
    return {
      key,
      token: holding.token,
      fence: holding.fence,
      remainingMs: Math.max(0, holding.expiresAt - Date.now()),
      waiters: this.queueLength(key),
    };
  }

  keys(): string[] {
    return [...this.#holdings.keys()];
  }

  watch(key: string, onChange: () => void): () => void {
    let set = this.#watchers.get(key);
    if (!set) this.#watchers.set(key, (set = new Set()));
    const watcher = () => onChange();
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0) this.#watchers.delete(key);
    };
  }
}

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
    capabilities: { fencing: true, notify: true, fifo: true, crossProcess: false },

    async tryAcquire(request: AcquireRequest, op?: OperationOptions): Promise<AcquireResult> {
      check(op?.signal);
      const holding = store.holding(request.key);
      if (holding)
        return { acquired: false, retryAfterMs: Math.max(0, holding.expiresAt - Date.now()) };
      return { acquired: true, fence: store.take(request.key, request) };
    },

    acquire(request, op) {
      return new Promise((resolve, reject) => {
        check(op.signal);
        if (!store.holding(request.key)) {
          resolve({ acquired: true, fence: store.take(request.key, request) });
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
      const holding = store.holding(lease.key);
      if (!holding) return { extended: false, reason: 'expired' };
      if (holding.token !== lease.token) return { extended: false, reason: 'not-owner' };
      store.setTtl(lease.key, holding, ttlMs);
      return { extended: true };
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
