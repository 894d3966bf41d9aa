/**
 * The lock manager: one backend-agnostic API over any {@link LockBackend}. Retrying, deadlines,
 * renewal, local expiry and events live here, once, for every backend.
 */
import { setMaxListeners } from 'node:events';
import { ReadWriteLock } from '../primitives/read-write-lock.js';
import { Semaphore, type SemaphoreOptions } from '../primitives/semaphore.js';
import { deadline, NO_PARENTS, throwIfAborted, type Deadline } from './abort.js';
import type { AcquireResult, LockBackend, LockInfo, ReleaseOutcome } from './backend.js';
import {
  InvalidArgumentError,
  LimitMismatchError,
  LockClosedError,
  LockTimeoutError,
  UnsupportedError,
} from './errors.js';
import { emitSafely, type LockEventHandler } from './events.js';
import { HeldLeases } from './held-leases.js';
import { Attempts, type AttemptRequest } from './attempts.js';
import { EXCLUSIVE, type Claim } from './kinds.js';
import { Lease, localDeadline, type LeaseContext } from './lease.js';
import {
  DEFAULTS,
  validateKey,
  validateTimeout,
  validateRetry,
  validateSignal,
  validateToken,
  validateBackendTtl,
  validateWait,
  type ResolvedRetryOptions,
  type RetryOptions,
} from './options.js';
import { withTimeout } from './race.js';
import { startRenewal } from './renewal.js';
import { randomToken, type TokenGenerator } from './tokens.js';
import type {
  AcquireOptions,
  KindOperations,
  LockState,
  TryAcquireOptions,
  WithLockOptions,
} from './acquire-options.js';

export type {
  AcquireOptions,
  KindOperations,
  LockState,
  TryAcquireOptions,
  WithLockOptions,
} from './acquire-options.js';

/** Options of {@link createLocks}. */
export interface LockManagerOptions {
  /** The store that holds the locks, e.g. `filesBackend()`, `redisBackend({ client })`. */
  readonly backend: LockBackend;
  /**
   * Default lease time-to-live in ms. A holder that dies loses the lock after this long.
   * @default 30_000
   */
  readonly ttlMs?: number;
  /**
   * Default time `acquire` waits for a held lock before throwing `LockTimeoutError`;
   * `Infinity` waits without a deadline (an `AbortSignal` can still end it).
   * @default 10_000
   */
  readonly waitMs?: number;
  /**
   * Prepended to every key before it reaches the backend, to separate applications.
   * @default ''
   */
  readonly prefix?: string;
  /** Backoff between attempts while waiting. @default see {@link DEFAULTS}.retry */
  readonly retry?: RetryOptions;
  /** Makes each new lease's token. @default 128 random bits, base64url */
  readonly tokens?: TokenGenerator;
  /** Receives acquired / released / extended / lost / waited events. @default none */
  readonly onEvent?: LockEventHandler;
  /**
   * Clock drift allowance: `floor(ttlMs * driftFactor) + 2` ms is taken off every local deadline.
   * @default 0.01
   */
  readonly driftFactor?: number;
  /**
   * The longest one store call (an attempt, an extend, a release, an inspect) may take before it
   * fails with a retryable `BackendUnavailableError`. A backstop above the backends' own timeouts:
   * no call hangs on a store, or a backend, that never answers. A waiting `acquire` is bounded by
   * its `waitMs` as well, including its first attempt.
   * @default 10_000
   */
  readonly operationTimeoutMs?: number;
}

/**
 * One lock API over any backend.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { filesBackend } from 'distlock/files';
 *
 * const locks = createLocks({ backend: filesBackend(), ttlMs: 10_000 });
 * await locks.withLock('account:42', async (lease) => {
 *   await chargeCard({ signal: lease.signal, fence: lease.fence });
 * });
 * ```
 */
export class LockManager {
  readonly #backend: LockBackend;
  readonly #ttlMs: number;
  readonly #waitMs: number;
  readonly #prefix: string;
  readonly #retry: ResolvedRetryOptions;
  readonly #tokens: TokenGenerator;
  readonly #onEvent: LockEventHandler | undefined;
  readonly #driftFactor: number;
  readonly #operationTimeoutMs: number;
  readonly #held = new HeldLeases();
  /** The attempt loops, over this manager's backend, retry policy and tokens. */
  readonly #attempts: Attempts;
  /** What every lease of this manager shares (one object, not one per lease). */
  readonly #leaseContext: LeaseContext;
  readonly #closing = new AbortController();
  /** Same as `#closing.signal.aborted`, read on every call (a plain field is much cheaper). */
  #closed = false;
  /** Waits in progress, ended by `close()`. */
  readonly #waits = new Set<Deadline>();
  /** What read-write locks and semaphores of this manager call (one object per manager). */
  readonly #kindOperations: KindOperations = {
    acquire: (key, options, claim) => this.#acquire(key, options, claim),
    tryAcquire: (key, options, claim) => this.#tryAcquire(key, options, claim),
    withLease: (key, fn, options, claim) => this.#withLease(key, fn, options, claim),
    inspect: (key) => this.inspect(key),
  };

  constructor(options: LockManagerOptions) {
    // Every waiting acquire listens on this signal; many concurrent waiters are normal, not a leak.
    setMaxListeners(0, this.#closing.signal);
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'must be an object');
    }
    this.#backend = validateBackend(options.backend);
    this.#ttlMs = this.#validTtl(options.ttlMs ?? DEFAULTS.ttlMs);
    this.#waitMs = validateWait(options.waitMs ?? DEFAULTS.waitMs);
    const prefix = options.prefix ?? DEFAULTS.prefix;
    if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
    if (prefix !== '') validateKey(prefix, 'prefix');
    this.#prefix = prefix;
    this.#retry = validateRetry(options.retry);
    if (options.tokens !== undefined && typeof options.tokens !== 'function') {
      throw new InvalidArgumentError('tokens', 'must be a function (key) => string');
    }
    this.#tokens = options.tokens ?? randomToken;
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
      throw new InvalidArgumentError('onEvent', 'must be a function');
    }
    this.#onEvent = options.onEvent;
    const driftFactor = options.driftFactor ?? DEFAULTS.driftFactor;
    if (typeof driftFactor !== 'number' || !(driftFactor >= 0 && driftFactor < 0.5)) {
      throw new InvalidArgumentError(
        'driftFactor',
        `must be a number in [0, 0.5), got ${String(driftFactor)}`,
      );
    }
    this.#driftFactor = driftFactor;
    this.#operationTimeoutMs = validateTimeout(
      options.operationTimeoutMs ?? DEFAULTS.operationTimeoutMs,
      'operationTimeoutMs',
    );
    this.#leaseContext = {
      backend: this.#backend,
      driftFactor,
      operationTimeoutMs: this.#operationTimeoutMs,
      onEvent: this.#onEvent,
      onSettled: (lease) => this.#held.settled(lease),
    };
    this.#attempts = new Attempts({
      backend: this.#backend,
      retry: this.#retry,
      tokens: this.#tokens,
      operationTimeoutMs: this.#operationTimeoutMs,
      leaseFrom: (request, result, sentAt) => this.#leaseFrom(request, result, sentAt),
    });
  }

  /** The backend this manager uses. */
  get backend(): LockBackend {
    return this.#backend;
  }

  /**
   * Take the lock on `key`, waiting up to `waitMs` for its holder to release it.
   *
   * A store that cannot be reached at the first attempt fails the call at once (a down store is
   * not a held lock); once the wait has begun, transient store errors are retried until the
   * deadline, and the last one becomes the timeout's `cause`. The deadline bounds the first
   * attempt too: a store that never answers cannot hold the call past `waitMs`.
   * @throws LockTimeoutError when the wait deadline passes; the signal's reason on abort;
   *   InvalidArgumentError for bad input; BackendUnavailableError / BackendError from the store.
   */
  acquire(key: string, options: AcquireOptions = {}): Promise<Lease> {
    return this.#acquire(key, options, EXCLUSIVE);
  }

  /**
   * One attempt that never waits: the lease, or `null` when someone else holds the key.
   * @throws InvalidArgumentError for bad input; BackendUnavailableError / BackendError from the
   *   store (also when it does not answer within `operationTimeoutMs`).
   */
  tryAcquire(key: string, options: TryAcquireOptions = {}): Promise<Lease | null> {
    return this.#tryAcquire(key, options, EXCLUSIVE);
  }

  /**
   * Run `fn` while holding the lock on `key`: acquire (waiting as `acquire` does), renew the lease
   * every `renewEveryMs` while `fn` runs, and always release afterwards. `fn` receives the lease;
   * its `signal` aborts if the lease is lost, and `fn` should stop touching the resource then.
   * Returns what `fn` returns; rethrows what `fn` throws. A failed final release is not thrown
   * (the lease expires by itself) — it is visible as the absence of a `released` event.
   */
  withLock<T>(
    key: string,
    fn: (lease: Lease) => Promise<T> | T,
    options: WithLockOptions = {},
  ): Promise<T> {
    return this.#withLease(key, fn, options, EXCLUSIVE);
  }

  /**
   * A read-write lock on `key`: many readers at once, or one writer alone. The writer side is the
   * same lock as `acquire(key)`. Once a writer waits, readers that arrive after it wait behind it.
   *
   * @example
   * ```ts
   * const doc = locks.readWrite('doc:7');
   * const page = await doc.withRead(async (lease) => render(await load(7)));
   * await doc.withWrite(async (lease) => save(7, edit, { fence: lease.fence }));
   * ```
   * @throws UnsupportedError if the backend offers no shared holdings (`capabilities.shared`).
   */
  readWrite(key: string): ReadWriteLock {
    validateKey(key);
    this.#requireShared('read-write locks');
    return new ReadWriteLock(key, this.#kindOperations);
  }

  /**
   * A counting semaphore on `key`: at most `limit` holders (permits) at once, each a lease with
   * its own TTL, so a crashed holder's permit comes back when its TTL ends. Every user of the key
   * must pass the same `limit` (else `LimitMismatchError`); it can change once nobody holds or
   * awaits a permit.
   *
   * @example
   * ```ts
   * const exports = locks.semaphore('exports', { limit: 3 });
   * await exports.withPermit(async (lease) => runExport({ signal: lease.signal }));
   * ```
   * @throws UnsupportedError if the backend offers no shared holdings; InvalidArgumentError for a
   *   bad `limit`.
   */
  semaphore(key: string, options: SemaphoreOptions): Semaphore {
    validateKey(key);
    const semaphore = new Semaphore(key, options, this.#kindOperations);
    this.#requireShared('semaphores');
    return semaphore;
  }

  /**
   * Release `key` if `token` holds it, without a lease object (e.g. from another process).
   * @returns `released`, `expired` (nobody held it) or `not-owner` (another token holds it).
   */
  async release(key: string, token: string): Promise<ReleaseOutcome> {
    validateKey(key);
    validateToken(token);
    this.#throwIfClosed();
    const outcome = await this.#bounded(
      this.#backend.release({ key: this.#prefix + key, token }),
      'release',
    );
    this.#held.markReleased(key, token);
    emitSafely(this.#onEvent, {
      type: 'released',
      key,
      backend: this.#backend.name,
      token,
      outcome,
    });
    return outcome;
  }

  /**
   * The holders of `key` as the store sees them, or `null` when free. For a shared key (readers,
   * semaphore permits) `holders` lists each one; `token`, `fence` and `remainingMs` are the
   * newest holder's.
   */
  async inspect(key: string): Promise<LockState | null> {
    validateKey(key);
    this.#throwIfClosed();
    const info = await this.#bounded(this.#backend.inspect(this.#prefix + key), 'inspect');
    return info && stateOf(info, key);
  }

  /**
   * Current holders whose key starts with `prefix` (after the manager's own prefix).
   * @throws UnsupportedError if the backend cannot enumerate locks.
   */
  async list(prefix = ''): Promise<LockState[]> {
    if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
    if (prefix !== '') validateKey(prefix, 'prefix');
    this.#throwIfClosed();
    if (!this.#backend.list)
      throw new UnsupportedError(`the ${this.#backend.name} backend cannot list locks`);
    const infos = await this.#bounded(this.#backend.list(this.#prefix + prefix), 'list');
    return infos
      .filter((info) => info.key.startsWith(this.#prefix))
      .map((info) => stateOf(info, info.key.slice(this.#prefix.length)));
  }

  /**
   * Break the lock on `key` whoever holds it (an operator's tool: the holder is not told until it
   * next extends). Every holder of a shared key is removed. True if a holding was removed.
   * @throws UnsupportedError if the backend cannot force a release.
   */
  async forceRelease(key: string): Promise<boolean> {
    validateKey(key);
    this.#throwIfClosed();
    if (!this.#backend.forceRelease) {
      throw new UnsupportedError(`the ${this.#backend.name} backend cannot force a release`);
    }
    return this.#bounded(this.#backend.forceRelease(this.#prefix + key), 'forceRelease');
  }

  /**
   * Stop: abort pending waits (they reject with `LockClosedError`), release the leases this manager
   * holds (best effort), and close the backend's own connections. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new LockClosedError();
    this.#closing.abort(reason);
    for (const wait of this.#waits) wait.end(reason);
    await this.#held.releaseAll();
    await this.#bounded(this.#backend.close(), 'close');
  }

  async #acquire(key: string, options: AcquireOptions, claim: Claim): Promise<Lease> {
    const request = this.#request(key, options, claim);
    const waitMs = validateWait(options.waitMs ?? this.#waitMs);
    const signal = validateSignal(options.signal);
    this.#throwIfClosed();
    throwIfAborted(signal);

    const backend = this.#backend;
    if (waitMs === 0) {
      // One attempt, bounded by the operation timeout and the caller's signal.
      const { lease } = await this.#attempts.attempt(request, signal);
      if (!lease) throw new LockTimeoutError(key, 0);
      this.#emitAcquired(lease, 0, 1);
      return lease;
    }

    const startedAt = Date.now();
    // The last transient store error, the timeout's cause (read when the deadline fires).
    let lastError: unknown;
    const wait = deadline(
      waitMs,
      signal ? [signal] : NO_PARENTS,
      () => new LockTimeoutError(key, Date.now() - startedAt, { cause: lastError }),
      startedAt,
    );
    // Ended by close() through this set rather than as a listener on a shared signal: adding and
    // removing an EventTarget listener per acquire costs more than the rest of the bookkeeping.
    this.#waits.add(wait);
    try {
      // FIFO backends queue server-side; their first step is already an attempt.
      if (!backend.acquire) {
        const first = await this.#attempts.attempt(request, undefined, wait, waitMs);
        if (first.lease) {
          this.#emitAcquired(first.lease, 0, 1);
          return first.lease;
        }
        if (this.#retry.tries === 1) throw new LockTimeoutError(key, 0);
      }
      return await this.#wait(request, wait, startedAt, (error) => (lastError = error));
    } catch (error) {
      throw this.#callerError(error, request);
    } finally {
      this.#waits.delete(wait);
      wait.dispose();
    }
  }

  /** The wait after a first attempt found the key held (or a queued backend's whole acquire). */
  async #wait(
    request: AttemptRequest,
    wait: Deadline,
    startedAt: number,
    onError: (error: unknown) => void,
  ): Promise<Lease> {
    let attempts = 1;
    // Attempts are only reported in events: no closure to count them for nobody.
    const onAttempt = this.#onEvent ? (n: number) => (attempts = n) : undefined;
    const progress = { waited: !this.#backend.acquire };
    try {
      const lease = this.#backend.acquire
        ? await this.#attempts.waitInQueue(request, wait, onAttempt, onError, startedAt, progress)
        : await this.#attempts.pollUntilAcquired(request, wait.signal, onAttempt, onError);
      if (this.#onEvent) {
        const waitedMs = Date.now() - startedAt;
        this.#emitWaited(request.userKey, waitedMs, 'acquired', attempts);
        this.#emitAcquired(lease, waitedMs, attempts);
      }
      return lease;
    } catch (error) {
      // A queued backend that never reached its store did not wait: nothing to report.
      if (progress.waited) {
        const outcome = wait.expired
          ? 'timeout'
          : wait.aborted || this.#closed
            ? 'aborted'
            : 'error';
        this.#emitWaited(request.userKey, Date.now() - startedAt, outcome, attempts);
      }
      throw error;
    }
  }

  async #tryAcquire(key: string, options: TryAcquireOptions, claim: Claim): Promise<Lease | null> {
    const request = this.#request(key, options, claim);
    const signal = validateSignal(options.signal);
    this.#throwIfClosed();
    throwIfAborted(signal);
    try {
      const { lease } = await this.#attempts.attempt(request, signal);
      if (lease) this.#emitAcquired(lease, 0, 1);
      return lease ?? null;
    } catch (error) {
      throw this.#callerError(error, request);
    }
  }

  async #withLease<T>(
    key: string,
    fn: (lease: Lease) => Promise<T> | T,
    options: WithLockOptions,
    claim: Claim,
  ): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError('fn', 'must be a function');
    if (typeof options !== 'object' || options === null)
      throw new InvalidArgumentError('options', 'must be an object');
    const ttlMs = this.#validTtl(options.ttlMs ?? this.#ttlMs);
    const renewEveryMs = options.renewEveryMs ?? Math.max(1, Math.floor(ttlMs / 3));
    if (!Number.isInteger(renewEveryMs) || renewEveryMs <= 0 || renewEveryMs >= ttlMs) {
      throw new InvalidArgumentError(
        'renewEveryMs',
        `must be an integer in [1, ttlMs), got ${String(renewEveryMs)}`,
      );
    }
    const lease = await this.#acquire(key, { ...options, ttlMs }, claim);
    const renewal = startRenewal(lease, ttlMs, renewEveryMs);
    try {
      return await fn(lease);
    } finally {
      renewal.stop();
      await lease.release().catch(() => undefined);
    }
  }

  #request(key: string, options: TryAcquireOptions, claim: Claim): AttemptRequest {
    validateKey(key);
    if (typeof options !== 'object' || options === null)
      throw new InvalidArgumentError('options', 'must be an object');
    const ttlMs = this.#validTtl(options.ttlMs ?? this.#ttlMs);
    const token = validateToken(
      options.token ?? this.#tokens(key),
      options.token === undefined ? 'tokens' : 'token',
    );
    const request = {
      key: this.#prefix + key,
      userKey: key,
      token,
      ttlMs,
      generatedToken: options.token === undefined,
    };
    // A mutex request carries no mode: backends that only know the mutex see what they always did.
    return claim.mode === 'exclusive'
      ? request
      : { ...request, mode: 'shared', limit: claim.limit };
  }

  /** The error to give the caller: a backend's `LimitMismatchError` names the caller's key. */
  #callerError(error: unknown, request: AttemptRequest): unknown {
    if (error instanceof LimitMismatchError && error.key !== request.userKey) {
      return new LimitMismatchError(request.userKey, error.limit, error.heldLimit);
    }
    return error;
  }

  /** A `ttlMs` the backend's store can honour (its `minTtlMs`/`maxTtlMs`). */
  #validTtl(value: unknown): number {
    return validateBackendTtl(value, this.#backend.capabilities, this.#backend.name);
  }

  #requireShared(what: string): void {
    if (!this.#backend.capabilities.shared) {
      throw new UnsupportedError(`the ${this.#backend.name} backend does not offer ${what}`);
    }
  }

  /** A store call bounded by the operation timeout. */
  #bounded<T>(call: Promise<T>, operation: string): Promise<T> {
    return withTimeout(call, this.#operationTimeoutMs, () => `${this.#backend.name} ${operation}`);
  }

  #leaseFrom(
    request: AttemptRequest,
    result: AcquireResult & { acquired: true },
    sentAt: number,
  ): Lease {
    const expiresAt = localDeadline(
      result.startedAt ?? sentAt,
      result.validityMs ?? request.ttlMs,
      request.ttlMs,
      this.#driftFactor,
    );
    const lease = new Lease(this.#leaseContext, {
      key: request.userKey,
      backendKey: request.key,
      token: request.token,
      fence: result.fence,
      expiresAt,
      ttlMs: request.ttlMs,
      mode: request.mode ?? 'exclusive',
    });
    this.#held.add(lease, result.lost);
    return lease;
  }

  #emitAcquired(lease: Lease, waitedMs: number, attempts: number): void {
    if (!this.#onEvent) return; // no event object to build for nobody
    emitSafely(this.#onEvent, {
      type: 'acquired',
      key: lease.key,
      backend: this.#backend.name,
      token: lease.token,
      fence: lease.fence,
      waitedMs,
      attempts,
    });
  }

  #emitWaited(
    key: string,
    waitedMs: number,
    outcome: 'acquired' | 'timeout' | 'aborted' | 'error',
    attempts: number,
  ) {
    if (!this.#onEvent) return;
    emitSafely(this.#onEvent, {
      type: 'waited',
      key,
      backend: this.#backend.name,
      waitedMs,
      outcome,
      attempts,
    });
  }

  #throwIfClosed(): void {
    if (this.#closed) throw new LockClosedError();
  }
}

/**
 * Create a lock manager.
 *
 * @example
 * ```ts
 * const locks = createLocks({ backend: memoryBackend(), ttlMs: 5_000 });
 * const lease = await locks.acquire('seat:12A', { waitMs: 2_000 });
 * try { await book(lease.fence); } finally { await lease.release(); }
 * ```
 */
export function createLocks(options: LockManagerOptions): LockManager {
  return new LockManager(options);
}

function validateBackend(backend: unknown): LockBackend {
  const b = backend as Partial<LockBackend> | undefined;
  if (
    typeof b !== 'object' ||
    b === null ||
    typeof b.tryAcquire !== 'function' ||
    typeof b.extend !== 'function' ||
    typeof b.release !== 'function' ||
    typeof b.inspect !== 'function' ||
    typeof b.close !== 'function'
  ) {
    throw new InvalidArgumentError(
      'backend',
      'must be a LockBackend (e.g. filesBackend(), memoryBackend())',
    );
  }
  return b as LockBackend;
}

/** `info` as the manager returns it: under the caller's key, with `mode` and `holders` filled in. */
function stateOf(info: LockInfo, key: string): LockState {
  const mode = info.mode ?? 'exclusive';
  const holders = info.holders ?? [
    { token: info.token, fence: info.fence, remainingMs: info.remainingMs, mode },
  ];
  return { ...info, key, mode, holders };
}
