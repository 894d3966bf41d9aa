/**
 * The lock manager: one backend-agnostic API over any {@link LockBackend}. Retrying, deadlines,
 * renewal, local expiry and events live here, once, for every backend.
 */
import { setMaxListeners } from 'node:events';
import { deadline, NO_PARENTS, throwIfAborted, type Deadline } from './abort.js';
import type {
  AcquireRequest,
  AcquireResult,
  LockBackend,
  LockInfo,
  ReleaseOutcome,
} from './backend.js';
import { backoffDelay } from './backoff.js';
import {
  InvalidArgumentError,
  LockClosedError,
  LockError,
  LockLostError,
  LockTimeoutError,
  UnsupportedError,
} from './errors.js';
import { emitSafely, type LockEventHandler } from './events.js';
import { Lease, localDeadline, type LeaseContext } from './lease.js';
import {
  DEFAULTS,
  validateKey,
  validateRetry,
  validateSignal,
  validateToken,
  validateTtl,
  validateWait,
  type ResolvedRetryOptions,
  type RetryOptions,
} from './options.js';
import { startRenewal } from './renewal.js';
import { randomToken, type TokenGenerator } from './tokens.js';
import { WakeLatch } from './wake.js';

/** One acquire's request: also what the backend gets (`key` prefixed), so no copy is made. */
interface AttemptRequest extends AcquireRequest {
  /** The key as the caller passed it (without the manager's prefix). */
  readonly userKey: string;
  /** False when the caller chose the token: it must not be swapped for a fresh one. */
  readonly generatedToken: boolean;
}

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
}

/** Options of {@link LockManager.acquire}. */
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

/** Options of {@link LockManager.tryAcquire}. */
export type TryAcquireOptions = Omit<AcquireOptions, 'waitMs'>;

/** Options of {@link LockManager.withLock}. */
export interface WithLockOptions extends AcquireOptions {
  /** How often the lease is renewed while `fn` runs. @default a third of `ttlMs` */
  readonly renewEveryMs?: number;
}

/** A backend's `lost` reason as the error a lease reports (under the caller's key). */
function lostError(key: string, reason: unknown): LockLostError {
  return reason instanceof LockLostError
    ? reason
    : new LockLostError(key, 'unreachable', { cause: reason });
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
  readonly #held = new Set<Lease>();
  /**
   * Held leases by the backend `lost` signal they follow (backends that have one): one listener per
   * signal, however many leases share it (etcd: one signal per session). Adding and removing an
   * EventTarget listener per lease measurably slowed an uncontended acquire + release.
   */
  readonly #lostFollowers = new WeakMap<AbortSignal, Set<Lease>>();
  /** Each held lease's entry in `#lostFollowers`, removed when the lease settles. */
  readonly #following = new Map<Lease, Set<Lease>>();
  /** What every lease of this manager shares (one object, not one per lease). */
  readonly #leaseContext: LeaseContext;
  /**
   * Sweeps `#held` for leases past their local deadline that nobody watches (see `Lease`), so a
   * lease never released is still forgotten. Runs while anything is held; unref'd.
   */
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #closing = new AbortController();
  /** Same as `#closing.signal.aborted`, read on every call (a plain field is much cheaper). */
  #closed = false;
  /** Waits in progress, ended by `close()`. */
  readonly #waits = new Set<Deadline>();

  constructor(options: LockManagerOptions) {
    // Every waiting acquire listens on this signal; many concurrent waiters are normal, not a leak.
    setMaxListeners(0, this.#closing.signal);
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'must be an object');
    }
    this.#backend = validateBackend(options.backend);
    this.#ttlMs = validateTtl(options.ttlMs ?? DEFAULTS.ttlMs);
    this.#waitMs = validateWait(options.waitMs ?? DEFAULTS.waitMs);
    const prefix = options.prefix ?? DEFAULTS.prefix;
    if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
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
    this.#leaseContext = {
      backend: this.#backend,
      driftFactor,
      onEvent: this.#onEvent,
      onSettled: (lease) => {
        this.#held.delete(lease);
        const followers = this.#following.get(lease);
        if (followers) {
          this.#following.delete(lease);
          followers.delete(lease);
        }
      },
    };
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
   * deadline, and the last one becomes the timeout's `cause`.
   * @throws LockTimeoutError when the wait deadline passes; the signal's reason on abort;
   *   InvalidArgumentError for bad input; BackendUnavailableError / BackendError from the store.
   */
  async acquire(key: string, options: AcquireOptions = {}): Promise<Lease> {
    const request = this.#request(key, options);
    const waitMs = validateWait(options.waitMs ?? this.#waitMs);
    const signal = validateSignal(options.signal);
    this.#throwIfClosed();
    throwIfAborted(signal);

    const startedAt = Date.now();
    const backend = this.#backend;
    // FIFO backends queue server-side; their first step is already an attempt.
    if (!(backend.acquire && waitMs > 0)) {
      const first = await this.#attempt(request, signal);
      if (first.lease) {
        this.#emitAcquired(first.lease, 0, 1);
        return first.lease;
      }
      if (waitMs === 0 || this.#retry.tries === 1) throw new LockTimeoutError(key, 0);
    }

    const wait = deadline(
      waitMs,
      signal ? [signal] : NO_PARENTS,
      () => new LockTimeoutError(key, Date.now() - startedAt),
      startedAt,
    );
    // Ended by close() through this set rather than as a listener on a shared signal: adding and
    // removing an EventTarget listener per acquire costs more than the rest of the bookkeeping.
    this.#waits.add(wait);
    let attempts = 1;
    // Attempts are only reported in events: no closure to count them for nobody.
    const onAttempt = this.#onEvent ? (n: number) => (attempts = n) : undefined;
    try {
      const lease = backend.acquire
        ? await this.#waitInQueue(request, wait, onAttempt, startedAt)
        : await this.#pollUntilAcquired(request, wait.signal, onAttempt);
      if (this.#onEvent) {
        const waitedMs = Date.now() - startedAt;
        this.#emitWaited(key, waitedMs, 'acquired', attempts);
        this.#emitAcquired(lease, waitedMs, attempts);
      }
      return lease;
    } catch (error) {
      const waitedMs = Date.now() - startedAt;
      const outcome = wait.expired
        ? 'timeout'
        : signal?.aborted || this.#closed
          ? 'aborted'
          : 'error';
      this.#emitWaited(key, waitedMs, outcome, attempts);
      throw error;
    } finally {
      this.#waits.delete(wait);
      wait.dispose();
    }
  }

  /**
   * One attempt that never waits: the lease, or `null` when someone else holds the key.
   * @throws InvalidArgumentError for bad input; BackendUnavailableError / BackendError from the store.
   */
  async tryAcquire(key: string, options: TryAcquireOptions = {}): Promise<Lease | null> {
    const request = this.#request(key, options);
    const signal = validateSignal(options.signal);
    this.#throwIfClosed();
    throwIfAborted(signal);
    const { lease } = await this.#attempt(request, signal);
    if (lease) this.#emitAcquired(lease, 0, 1);
    return lease ?? null;
  }

  /**
   * Run `fn` while holding the lock on `key`: acquire (waiting as `acquire` does), renew the lease
   * every `renewEveryMs` while `fn` runs, and always release afterwards. `fn` receives the lease;
   * its `signal` aborts if the lease is lost, and `fn` should stop touching the resource then.
   * Returns what `fn` returns; rethrows what `fn` throws. A failed final release is not thrown
   * (the lease expires by itself) — it is visible as the absence of a `released` event.
   */
  async withLock<T>(
    key: string,
    fn: (lease: Lease) => Promise<T> | T,
    options: WithLockOptions = {},
  ): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError('fn', 'must be a function');
    const ttlMs = validateTtl(options.ttlMs ?? this.#ttlMs);
    const renewEveryMs = options.renewEveryMs ?? Math.max(1, Math.floor(ttlMs / 3));
    if (!Number.isInteger(renewEveryMs) || renewEveryMs <= 0 || renewEveryMs >= ttlMs) {
      throw new InvalidArgumentError(
        'renewEveryMs',
        `must be an integer in [1, ttlMs), got ${String(renewEveryMs)}`,
      );
    }
    const lease = await this.acquire(key, { ...options, ttlMs });
    const renewal = startRenewal(lease, ttlMs, renewEveryMs);
    try {
      return await fn(lease);
    } finally {
      renewal.stop();
      await lease.release().catch(() => undefined);
    }
  }

  /**
   * Release `key` if `token` holds it, without a lease object (e.g. from another process).
   * @returns `released`, `expired` (nobody held it) or `not-owner` (another token holds it).
   */
  async release(key: string, token: string): Promise<ReleaseOutcome> {
    validateKey(key);
    validateToken(token);
    this.#throwIfClosed();
    const outcome = await this.#backend.release({ key: this.#prefix + key, token });
    for (const lease of this.#held) {
      if (lease.key === key && lease.token === token)
        lease.markLost(new LockLostError(key, 'not-owner'));
    }
    emitSafely(this.#onEvent, {
      type: 'released',
      key,
      backend: this.#backend.name,
      token,
      outcome,
    });
    return outcome;
  }

  /** The current holder of `key` as the store sees it, or `null` when free. */
  async inspect(key: string): Promise<LockInfo | null> {
    validateKey(key);
    this.#throwIfClosed();
    const info = await this.#backend.inspect(this.#prefix + key);
    return info && { ...info, key };
  }

  /**
   * Current holders whose key starts with `prefix` (after the manager's own prefix).
   * @throws UnsupportedError if the backend cannot enumerate locks.
   */
  async list(prefix = ''): Promise<LockInfo[]> {
    if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
    this.#throwIfClosed();
    if (!this.#backend.list)
      throw new UnsupportedError(`the ${this.#backend.name} backend cannot list locks`);
    const infos = await this.#backend.list(this.#prefix + prefix);
    return infos
      .filter((info) => info.key.startsWith(this.#prefix))
      .map((info) => ({ ...info, key: info.key.slice(this.#prefix.length) }));
  }

  /**
   * Break the lock on `key` whoever holds it (an operator's tool: the holder is not told until it
   * next extends). True if a holding was removed.
   * @throws UnsupportedError if the backend cannot force a release.
   */
  async forceRelease(key: string): Promise<boolean> {
    validateKey(key);
    this.#throwIfClosed();
    if (!this.#backend.forceRelease) {
      throw new UnsupportedError(`the ${this.#backend.name} backend cannot force a release`);
    }
    return this.#backend.forceRelease(this.#prefix + key);
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
    this.#sweep(); // an expired lease has nothing left to release
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await Promise.allSettled([...this.#held].map((lease) => lease.release()));
    await this.#backend.close();
  }

  #request(key: string, options: TryAcquireOptions): AttemptRequest {
    validateKey(key);
    if (typeof options !== 'object' || options === null)
      throw new InvalidArgumentError('options', 'must be an object');
    const ttlMs = validateTtl(options.ttlMs ?? this.#ttlMs);
    const token = validateToken(
      options.token ?? this.#tokens(key),
      options.token === undefined ? 'tokens' : 'token',
    );
    return {
      key: this.#prefix + key,
      userKey: key,
      token,
      ttlMs,
      generatedToken: options.token === undefined,
    };
  }

  /**
   * The request to send after an attempt failed with a transient error. That attempt's outcome
   * is unknown: the store may still grant it, and the backend may later undo that grant by token
   * (a late "leave" or release). Reusing the token would let such an undo remove the *next*
   * attempt's grant, so a generated token is replaced; a caller's own token cannot be, and the
   * error is thrown for the caller to decide.
   */
  #retryRequest(request: AttemptRequest, error: unknown): AttemptRequest {
    if (!request.generatedToken) throw error;
    const token = validateToken(this.#tokens(request.userKey), 'tokens');
    return { ...request, token };
  }

  /** One tryAcquire; an abort mid-flight rejects at once and gives back a late success. */
  async #attempt(
    request: AttemptRequest,
    signal: AbortSignal | undefined,
  ): Promise<{ lease?: Lease; result: AcquireResult }> {
    const sentAt = Date.now();
    const pending = this.#backend.tryAcquire(request);
    const result = await raceAbort(pending, signal, (late) => {
      if (late.acquired) this.#backend.release(request).catch(() => undefined);
    });
    if (!result.acquired) return { result };
    return { lease: this.#leaseFrom(request, result, sentAt), result };
  }

  async #pollUntilAcquired(
    initial: AttemptRequest,
    signal: AbortSignal,
    onAttempt: ((attempts: number) => void) | undefined,
  ): Promise<Lease> {
    let request = initial;
    const latch = new WakeLatch();
    const unwatch = this.#backend.watch
      ? await raceAbort(
          this.#backend.watch(request.key, latch.notify),
          signal,
          (late) => void late(),
        )
      : undefined;
    try {
      let attempts = 1;
      let lastError: unknown;
      // The first attempt failed before we subscribed: try again at once so a release in between is not missed.
      for (;;) {
        if (attempts >= this.#retry.tries)
          throw new LockTimeoutError(request.userKey, 0, { cause: lastError });
        let retryAfterMs: number | undefined;
        try {
          attempts += 1;
          onAttempt?.(attempts);
          const { lease, result } = await this.#attempt(request, signal);
          if (lease) return lease;
          if (!result.acquired) retryAfterMs = result.retryAfterMs;
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          if (!(error instanceof LockError && error.retryable)) throw error;
          lastError = error;
          // Polling never undoes a grant by token, so a caller's own token may be tried again.
          if (request.generatedToken) request = this.#retryRequest(request, error);
        }
        let delay = backoffDelay(attempts - 1, this.#retry);
        if (retryAfterMs !== undefined && retryAfterMs >= 0)
          delay = Math.min(delay, retryAfterMs + 1);
        await latch.wait(delay, signal);
      }
    } finally {
      await Promise.resolve(unwatch?.()).catch(() => undefined);
    }
  }

  async #waitInQueue(
    initial: AttemptRequest,
    wait: Deadline,
    onAttempt: ((attempts: number) => void) | undefined,
    startedAt: number,
  ): Promise<Lease> {
    let request = initial;
    const backend = this.#backend;
    let attempts = 0;
    for (;;) {
      attempts += 1;
      onAttempt?.(attempts);
      // The first attempt goes out right after the acquire began (no clock read needed).
      const sentAt = attempts === 1 ? startedAt : Date.now();
      try {
        // The deadline is the options object: its signal is built only if the backend reads it.
        const result = await backend.acquire!(request, wait);
        if (wait.aborted) {
          // Granted as the wait ended (a backend that never read the signal could not tell).
          await backend.release(request).catch(() => undefined);
          throw wait.signal.reason;
        }
        return this.#leaseFrom(request, result, sentAt);
      } catch (error) {
        const signal = wait.signal;
        if (signal.aborted) throw signal.reason;
        if (!(error instanceof LockError && error.retryable) || attempts >= this.#retry.tries)
          throw error;
        // A transient store failure: back off and queue again (the backend dequeued us).
        request = this.#retryRequest(request, error);
        await new WakeLatch().wait(backoffDelay(attempts, this.#retry), signal);
      }
    }
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
    const lost = result.lost;
    const lease = new Lease(this.#leaseContext, {
      key: request.userKey,
      backendKey: request.key,
      token: request.token,
      fence: result.fence,
      expiresAt,
      ttlMs: request.ttlMs,
    });
    this.#held.add(lease);
    if (!this.#sweeper && !this.#closed) {
      this.#sweeper = setInterval(() => this.#sweep(), SWEEP_EVERY_MS);
      this.#sweeper.unref?.();
    }
    if (lost) this.#followLost(lease, lost);
    return lease;
  }

  /** Mark `lease` lost when the backend's `lost` signal aborts (until the lease settles). */
  #followLost(lease: Lease, lost: AbortSignal): void {
    if (lost.aborted) {
      lease.markLost(lostError(lease.key, lost.reason));
      return;
    }
    let followers = this.#lostFollowers.get(lost);
    if (!followers) {
      const leases = new Set<Lease>();
      followers = leases;
      this.#lostFollowers.set(lost, leases);
      lost.addEventListener(
        'abort',
        () => {
          // markLost settles each lease, which takes it out of the set: iterate over a copy.
          for (const follower of [...leases])
            follower.markLost(lostError(follower.key, lost.reason));
        },
        { once: true },
      );
    }
    followers.add(lease);
    this.#following.set(lease, followers);
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

  /** Forget held leases past their local deadline; stop sweeping once nothing is held. */
  #sweep(): void {
    const now = Date.now();
    for (const lease of this.#held) lease.expireIfDue(now);
    if (this.#held.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #throwIfClosed(): void {
    if (this.#closed) throw new LockClosedError();
  }
}

/** How often held leases are checked for an unobserved expiry (memory hygiene only). */
const SWEEP_EVERY_MS = 1_000;

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

/**
 * Settle with `promise`, or reject with `signal.reason` as soon as the signal aborts. A result that
 * arrives after the abort is handed to `onLate` (e.g. to release a lock nobody is waiting for).
 */
function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onLate: (value: T) => void,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.then(onLate, () => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (aborted) onLate(value);
        else resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        if (!aborted) reject(error);
      },
    );
  });
}
