/**
 * The attempts of one acquire: a single try bounded by the operation timeout and the wait, the
 * polling loop (woken by the backend's watch, else backoff) and the queued loop (a backend that
 * waits in its store's queue). Retrying transient store errors and swapping a generated token
 * after an attempt of unknown outcome live here, once, for every backend.
 */
import type { Deadline } from './abort.js';
import type {
  AcquireRequest,
  AcquireResult,
  LockBackend,
  QueuedAcquireOptions,
} from './backend.js';
import { backoffDelay } from './backoff.js';
import { LockError, LockTimeoutError } from './errors.js';
import type { Lease } from './lease.js';
import { validateToken, type ResolvedRetryOptions } from './options.js';
import { raceAbort, raceDeadline, withTimeout } from './race.js';
import type { TokenGenerator } from './tokens.js';
import { WakeLatch } from './wake.js';

/** One acquire's request: also what the backend gets (`key` prefixed), so no copy is made. */
export interface AttemptRequest extends AcquireRequest {
  /** The key as the caller passed it (without the manager's prefix). */
  readonly userKey: string;
  /** False when the caller chose the token: it must not be swapped for a fresh one. */
  readonly generatedToken: boolean;
}

/**
 * How long a queued backend may take to leave its queue once the wait has ended, before the caller
 * is answered anyway (the backend goes on leaving in the background).
 */
const LEAVE_GRACE_MS = 250;

/** What the attempts need of the manager that runs them. */
export interface AttemptContext {
  readonly backend: LockBackend;
  readonly retry: ResolvedRetryOptions;
  readonly tokens: TokenGenerator;
  readonly operationTimeoutMs: number;
  /** The lease for a granted attempt (the manager holds and follows it). */
  leaseFrom(
    request: AttemptRequest,
    result: AcquireResult & { acquired: true },
    sentAt: number,
  ): Lease;
}

/** The attempt loops of one manager (one object per manager, no state of its own). */
export class Attempts {
  readonly #context: AttemptContext;

  constructor(context: AttemptContext) {
    this.#context = context;
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
    const token = validateToken(this.#context.tokens(request.userKey), 'tokens');
    return { ...request, token };
  }

  /**
   * One tryAcquire, bounded by the operation timeout and by `signal` or `wait` (whichever is
   * given); an abort or the deadline mid-flight rejects at once and gives back a late success.
   * `waitMs`: the wait's length, when it is short enough to bound the call by itself.
   */
  async attempt(
    request: AttemptRequest,
    signal: AbortSignal | undefined,
    wait?: Deadline,
    waitMs = Infinity,
  ): Promise<{ lease?: Lease; result: AcquireResult }> {
    const sentAt = Date.now();
    const backend = this.#context.backend;
    const giveBack = (late: AcquireResult) => {
      if (late.acquired) backend.release(request).catch(() => undefined);
    };
    let pending = backend.tryAcquire(request);
    if (waitMs > this.#context.operationTimeoutMs) {
      pending = withTimeout(
        pending,
        this.#context.operationTimeoutMs,
        () => `${backend.name} tryAcquire`,
        giveBack,
      );
    }
    const result = await (wait
      ? raceDeadline(pending, wait, giveBack)
      : raceAbort(pending, signal, giveBack));
    if (!result.acquired) return { result };
    return { lease: this.#context.leaseFrom(request, result, sentAt), result };
  }

  async pollUntilAcquired(
    initial: AttemptRequest,
    signal: AbortSignal,
    onAttempt: ((attempts: number) => void) | undefined,
    onError: (error: unknown) => void,
  ): Promise<Lease> {
    let request = initial;
    const latch = new WakeLatch();
    const unwatch = this.#context.backend.watch
      ? await raceAbort(
          this.#context.backend.watch(request.key, latch.notify),
          signal,
          (late) => void late(),
        )
      : undefined;
    try {
      let attempts = 1;
      let lastError: unknown;
      // The first attempt failed before we subscribed: try again at once so a release in between is not missed.
      for (;;) {
        if (attempts >= this.#context.retry.tries)
          throw new LockTimeoutError(request.userKey, 0, { cause: lastError });
        let retryAfterMs: number | undefined;
        try {
          attempts += 1;
          onAttempt?.(attempts);
          const { lease, result } = await this.attempt(request, signal);
          if (lease) return lease;
          if (!result.acquired) retryAfterMs = result.retryAfterMs;
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          if (!(error instanceof LockError && error.retryable)) throw error;
          lastError = error;
          onError(error);
          // Polling never undoes a grant by token, so a caller's own token may be tried again.
          if (request.generatedToken) request = this.#retryRequest(request, error);
        }
        let delay = backoffDelay(attempts - 1, this.#context.retry);
        if (retryAfterMs !== undefined && retryAfterMs >= 0)
          delay = Math.min(delay, retryAfterMs + 1);
        await latch.wait(delay, signal);
      }
    } finally {
      await Promise.resolve(unwatch?.()).catch(() => undefined);
    }
  }

  async waitInQueue(
    initial: AttemptRequest,
    wait: Deadline,
    onAttempt: ((attempts: number) => void) | undefined,
    onError: (error: unknown) => void,
    startedAt: number,
    progress: { waited: boolean },
  ): Promise<Lease> {
    let request = initial;
    const backend = this.#context.backend;
    let attempts = 0;
    for (;;) {
      attempts += 1;
      onAttempt?.(attempts);
      // The first attempt goes out right after the acquire began (no clock read needed).
      const sentAt = attempts === 1 ? startedAt : Date.now();
      let reached = false;
      const attemptRequest = request;
      const options: QueuedAcquireOptions = {
        // The deadline's signal is built only if the backend reads it.
        get signal() {
          return wait.signal;
        },
        onAbort: wait.onAbort,
        onQueued: () => {
          reached = true;
          progress.waited = true;
        },
      };
      try {
        const result = await raceDeadline(
          backend.acquire!(attemptRequest, options),
          wait,
          () => backend.release(attemptRequest).catch(() => undefined),
          LEAVE_GRACE_MS,
        );
        if (wait.aborted) {
          // Granted as the wait ended (a backend that never read the signal could not tell).
          await backend.release(request).catch(() => undefined);
          throw wait.signal.reason;
        }
        return this.#context.leaseFrom(request, result, sentAt);
      } catch (error) {
        const signal = wait.signal;
        if (signal.aborted) throw signal.reason;
        // The first attempt never reached the store: a down store is not a held lock.
        if (attempts === 1 && !reached) throw error;
        if (
          !(error instanceof LockError && error.retryable) ||
          attempts >= this.#context.retry.tries
        )
          throw error;
        onError(error);
        // A transient store failure: back off and queue again (the backend dequeued us).
        request = this.#retryRequest(request, error);
        await new WakeLatch().wait(backoffDelay(attempts, this.#context.retry), signal);
      }
    }
  }
}
