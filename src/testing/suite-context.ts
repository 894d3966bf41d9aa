/**
 * What every part of the conformance suite shares: the options, simulated clients, fresh keys and
 * time scaling, and small helpers for waiting on signals and queues.
 */
import { randomBytes } from 'node:crypto';
import type { LockBackend } from '../core/backend.js';
import { createLocks, type LockManager, type LockManagerOptions } from '../core/locks.js';

/** Options of {@link runConformanceSuite}. */
export interface ConformanceOptions {
  /** Shown in the test names. */
  readonly name: string;
  /**
   * Makes one client's backend. Called once per simulated client; every backend it returns must
   * share one store (one server, one directory; for the memory backend, one `MemoryStore` passed
   * to every `memoryBackend({ store })`). May be called lazily, after `beforeAll` hooks.
   */
  readonly createBackend: () => LockBackend | Promise<LockBackend>;
  /**
   * Absolute path of a module exporting `createBackend()`, loaded by separate OS processes that
   * contend for one key, hold a semaphore's permits, or hold a lock until they are killed
   * (configure it through `process.env`, which the children inherit). A `.ts` module needs `tsx`
   * installed: the children are started with `node --import tsx`.
   * @default none: the multi-process tests are not registered
   */
  readonly processBackendModule?: string;
  /**
   * How many OS processes contend in the multi-process tests.
   * @default 4
   */
  readonly processes?: number;
  /**
   * Multiplies every TTL and time bound, for stores with coarse timers or slow round trips.
   * @default 1
   */
  readonly timeScale?: number;
  /**
   * Makes a backend whose store cannot be reached (e.g. the address of a port nobody listens on).
   * With it, the suite checks that an acquire fails at once with a retryable
   * `BackendUnavailableError` whose cause chain ends at the root cause (`ECONNREFUSED …`).
   * @default none: not checked
   */
  readonly createUnreachableBackend?: () => LockBackend | Promise<LockBackend>;
  /**
   * Makes a backend configured with a secret the store will refuse or never see (a wrong
   * password in its URL, an account key), and returns the secret: no error thrown by any call may
   * contain it, at any depth.
   * @default none: not checked
   */
  /**
   * Run the suite's tests concurrently (vitest's `describe.concurrent`, at most `maxConcurrency`
   * at a time) rather than one after another: for stores whose shortest lease is long (Azure's
   * 15 s), whose expiry tests would otherwise take minutes in a row. Every test has its own keys
   * and clients, so they do not interfere; give the time bounds room with `timeScale`.
   * @default false
   */
  readonly concurrent?: boolean;
  readonly createBackendWithSecret?: () =>
    | Promise<{ readonly backend: LockBackend; readonly secret: string }>
    | { readonly backend: LockBackend; readonly secret: string };
}

/** The suite's shared state, handed to each of its parts. */
export interface SuiteContext {
  readonly options: ConformanceOptions;
  /** Scales a duration by `timeScale`. */
  readonly ms: (value: number) => number;
  /**
   * A TTL for the store under test: `ms(value)` moved into the backend's
   * `capabilities.minTtlMs`/`maxTtlMs` (so a store whose leases last at least 15 s runs every test,
   * with 15 s leases). Known once `client()` has made a backend; before that, `ms(value)`.
   */
  readonly ttl: (value: number) => number;
  /** A new lock manager over a new backend of the store under test (closed after the suite). */
  readonly client: (overrides?: Partial<LockManagerOptions>) => Promise<LockManager>;
  /** A key no other test uses, so tests need no cleanup between them. */
  readonly freshKey: (label: string) => string;
}

/** Build the context; `afterAll` of the suite closes the managers it made. */
export function suiteContext(options: ConformanceOptions): SuiteContext & {
  readonly managers: LockManager[];
} {
  const scale = options.timeScale ?? 1;
  const ms = (value: number) => Math.round(value * scale);
  const managers: LockManager[] = [];
  let bounds: { minTtlMs?: number; maxTtlMs?: number } = {};
  const ttl = (value: number) =>
    Math.min(bounds.maxTtlMs ?? Infinity, Math.max(bounds.minTtlMs ?? 1, ms(value)));
  let keyCounter = 0;
  const runId = randomBytes(4).toString('hex');
  return {
    options,
    ms,
    ttl,
    managers,
    freshKey: (label) => `conformance-${runId}/${label}-${(keyCounter += 1)}`,
    async client(overrides = {}) {
      const backend = await options.createBackend();
      bounds = backend.capabilities;
      const locks = createLocks({
        backend,
        ttlMs: ttl(10_000),
        waitMs: ms(10_000),
        ...overrides,
      });
      managers.push(locks);
      return locks;
    },
  };
}

/** High-resolution epoch milliseconds. */
export const now = (): number => performance.timeOrigin + performance.now();

/** Wait until `signal` aborts; resolves with the time it did. */
export function abortedAt(signal: AbortSignal): Promise<number> {
  if (signal.aborted) return Promise.resolve(now());
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(now()), { once: true }),
  );
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Wait until `count` waiters are queued on `key` — by the store's own count where `inspect`
 * reports one (a key that is not held reports none), else (a backend without a visible queue)
 * after a pause.
 */
export async function queued(locks: LockManager, key: string, count: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const info = await locks.inspect(key);
    const waiters = info?.waiters;
    if (info && waiters === undefined) return delay(100);
    if (waiters !== undefined && waiters >= count) return;
    if (Date.now() > until) throw new Error(`${count} waiters never queued on ${key}`);
    await delay(5);
  }
}
