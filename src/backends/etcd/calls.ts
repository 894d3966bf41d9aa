/**
 * Every request the backend sends to etcd goes through {@link EtcdCalls.run}: a gRPC deadline per
 * attempt, retries of transient failures with a doubling delay (bounded by a count or by a time),
 * an early end when the caller aborts or the backend closes, and errors mapped to `LockError`s
 * with their root cause.
 *
 * Until etcd has answered once, an attempt's deadline is `connectTimeoutMs` and a connection
 * failure is not retried: an etcd that is down or never answers fails the first call promptly,
 * and the core reports that at once rather than as a lock that was not acquired in time.
 */
import type { Etcd3 } from 'etcd3';
import type { QueuedAcquireOptions } from '../../core/backend.js';
import { BackendUnavailableError, LockClosedError, type LockError } from '../../core/errors.js';
import { isConnectionFailure, isLeaseGone, rootCauseOf, toLockError } from './errors.js';
import type { ResolvedEtcdOptions } from './options.js';
import type { EtcdSession } from './session.js';
import { pause, raceAbort } from './signals.js';

/** The per-call options we pass to `etcd3` (a gRPC deadline). */
export interface CallOptions {
  readonly deadline: number;
}

/** The longest pause between retries of a call that must eventually go through. */
const MAX_RETRY_DELAY_MS = 1_000;

/** Options of {@link EtcdCalls.run}. */
export interface RunOptions<T> {
  readonly signal?: AbortSignal | undefined;
  /**
   * A signal read only once the first attempt failed: a result that races an abort is the
   * caller's to undo. Its end is still noticed at once through `onAbort` if the caller has it
   * (the core does: no controller is built for that), else when the attempt answers (bounded by
   * its gRPC deadline).
   */
  readonly lazySignal?: QueuedAcquireOptions;
  /** Reject at once when the backend closes (a queued acquire). */
  readonly closable?: boolean;
  /** The session the call is made for: a "lease not found" answer marks it lost. */
  readonly session?: EtcdSession;
  /** Attempts in all. @default the backend's `retryTries` */
  readonly tries?: number;
  /** Retry until this epoch ms (each attempt's deadline is cut to it), however many tries. */
  readonly until?: number;
  /** Receives the request still in flight when an abort or close ended the wait for it. */
  readonly inFlight?: (late: Promise<T>) => void;
}

/** Runs etcd requests for one backend. */
export class EtcdCalls {
  readonly client: Etcd3;
  readonly #options: ResolvedEtcdOptions;
  readonly #endpoints: readonly string[];
  readonly #closing = new AbortController();
  /** Rejects each call in flight for a queued acquire when the backend closes. */
  readonly #onClose = new Set<(reason: unknown) => void>();
  /** etcd has answered a request of this backend. */
  #answered = false;
  /** The last root cause seen (an open circuit reports none of its own). */
  #lastRoot: Error | undefined;

  constructor(client: Etcd3, options: ResolvedEtcdOptions, endpoints: readonly string[]) {
    this.client = client;
    this.#options = options;
    this.#endpoints = endpoints;
  }

  /** Aborted (with a `LockClosedError`) when the backend closes. */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  throwIfClosed(): void {
    if (this.#closing.signal.aborted) throw new LockClosedError('etcd backend');
  }

  /** Mark the backend closed: calls racing the close reject with `reason` now. */
  close(reason: LockClosedError): void {
    this.#closing.abort(reason);
    for (const reject of this.#onClose) reject(reason);
    this.#onClose.clear();
  }

  /** gRPC options for one attempt: its deadline. */
  callOptions(until = Infinity): CallOptions {
    const timeout = this.#answered
      ? this.#options.operationTimeoutMs
      : this.#options.connectTimeoutMs;
    return { deadline: Math.min(Date.now() + timeout, until) };
  }

  /** etcd answered (e.g. a keep-alive): later calls get the full `operationTimeoutMs`. */
  answered(): void {
    this.#answered = true;
  }

  /** Map an error of a call made for `what` to a `LockError`, with its root cause. */
  toLockError(error: unknown, what: string): LockError {
    const context = {
      endpoints: this.#endpoints,
      firstContact: !this.#answered,
      deadlineMs: this.#options.connectTimeoutMs,
      lastRoot: this.#lastRoot,
    };
    const root = rootCauseOf(error, context);
    if (root) this.#lastRoot = root;
    return toLockError(error, what, context);
  }

  /**
   * Run one etcd call, retrying transient failures with a doubling delay. Every call made
   * through here is safe to repeat (reads, or txns guarded by a compare).
   */
  async run<T>(
    what: string,
    call: (callOptions: CallOptions) => Promise<T>,
    options: RunOptions<T> = {},
  ): Promise<T> {
    const until = options.until ?? Infinity;
    const tries =
      options.until !== undefined ? Infinity : (options.tries ?? this.#options.retryTries);
    const closable = options.closable === true;
    let signal = options.signal;
    for (let attempt = 1; ; attempt += 1) {
      signal?.throwIfAborted();
      if (closable) this.throwIfClosed();
      const firstContact = !this.#answered;
      const pending = call(this.callOptions(until));
      try {
        const result = await (closable
          ? this.#raceClose(pending, signal, signal ? undefined : options.lazySignal?.onAbort)
          : signal
            ? raceAbort(pending, signal)
            : pending);
        this.#answered = true;
        return result;
      } catch (error) {
        signal ??= options.lazySignal?.signal;
        const aborted = signal?.aborted
          ? signal
          : closable && this.#closing.signal.aborted
            ? this.#closing.signal
            : undefined;
        if (aborted) {
          pending.catch(() => undefined);
          options.inFlight?.(pending);
          throw aborted.reason;
        }
        if (isLeaseGone(error) && options.session) {
          const lost = new BackendUnavailableError('etcd session lease is gone', { cause: error });
          options.session.markLost(lost);
          throw lost;
        }
        const lockError = this.toLockError(error, what);
        if (!lockError.retryable || attempt >= tries || options.session?.lost) throw lockError;
        // Nothing has ever answered: a store that is down is reported at once, not retried.
        if (firstContact && isConnectionFailure(error)) throw lockError;
        if (this.#closing.signal.aborted && !options.until) {
          throw new LockClosedError('etcd backend');
        }
        const delay = Math.min(MAX_RETRY_DELAY_MS, this.#options.retryDelayMs * 2 ** (attempt - 1));
        if (Date.now() + delay >= until) throw lockError;
        await pause(delay, [signal, closable ? this.#closing.signal : undefined]);
      }
    }
  }

  /**
   * `pending`, or a rejection as soon as `signal` aborts (or `subscribe` reports the wait's end)
   * or the backend closes.
   */
  #raceClose<T>(
    pending: Promise<T>,
    signal: AbortSignal | undefined,
    subscribe?: QueuedAcquireOptions['onAbort'],
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason as unknown);
      this.#onClose.add(reject);
      signal?.addEventListener('abort', onAbort, { once: true });
      const unsubscribe = subscribe?.((reason) => reject(reason));
      const settle = () => {
        this.#onClose.delete(reject);
        signal?.removeEventListener('abort', onAbort);
        unsubscribe?.();
      };
      pending.then(
        (value) => {
          settle();
          resolve(value);
        },
        (error: unknown) => {
          settle();
          reject(error);
        },
      );
    });
  }
}
