/**
 * The contract between the backend-agnostic core and a store. A backend does one thing per call
 * against its store and reports the outcome; retrying, deadlines, renewal, local expiry and events
 * belong to the core, once.
 *
 * Expected outcomes (held by someone else, not the owner) are discriminated unions. Only
 * infrastructure failures throw, as a `LockError` (`BackendUnavailableError` when retrying may help).
 *
 * Keys reach the backend already prefixed by the lock manager; a backend may add its own namespace.
 */

/** What a backend can do beyond the required calls. The core and the conformance suite read these. */
export interface BackendCapabilities {
  /** Fences come from the store and strictly increase for every new holder of a key. */
  readonly fencing: boolean;
  /** The backend implements {@link LockBackend.watch}: waiters are woken by the store. */
  readonly notify: boolean;
  /** Waiters are served in arrival order (such a backend implements {@link LockBackend.acquire}). */
  readonly fifo: boolean;
  /** Locks are visible to other processes (false only for in-process stores). */
  readonly crossProcess: boolean;
  /**
   * The backend takes shared holdings (`AcquireRequest.mode === 'shared'`): read-write locks and
   * counting semaphores. A backend without it only ever receives exclusive requests; the core
   * answers a read or semaphore call on it with `UnsupportedError`.
   * @default false
   */
  readonly shared?: boolean;
  /**
   * A holding also ends as soon as its holder's connection to the store does (a session-scoped
   * lock, e.g. PostgreSQL's session mode): a holder whose process dies frees the key at once
   * rather than when its TTL ends. The TTL still ends a holding its live holder stops renewing.
   * @default false
   */
  readonly endsWithConnection?: boolean;
  /**
   * The shortest `ttlMs` the store can honour (Azure blob leases last at least 15 s). The core
   * refuses a shorter `ttlMs` (in `acquire`, `withLock`, `extend`, the manager's default) with an
   * `InvalidArgumentError` naming `ttlMs`, before any store call.
   * @default 1 (any positive TTL)
   */
  readonly minTtlMs?: number;
  /**
   * The longest `ttlMs` the store can honour; the core refuses a longer one the same way. A
   * backend that serves any TTL (even one beyond its store's longest lease, by renewing the store
   * lease itself) leaves it unset.
   * @default no bound beyond what a timer can honour
   */
  readonly maxTtlMs?: number;
}

/**
 * How a request holds its key:
 * - `exclusive`: alone (a mutex, or the writer of a read-write lock);
 * - `shared`: beside other shared holders, at most `limit` of them at once (a reader of a
 *   read-write lock has no limit; a semaphore permit's limit is the semaphore's).
 *
 * One key is one resource, whatever the kind: an exclusive holding excludes every shared one, so
 * `acquire(k)` and `readWrite(k).write()` are the same lock, and readers of `k` wait for it.
 */
export type LockMode = 'exclusive' | 'shared';

/**
 * A request to take `key` for `ttlMs` under `token`. A backend with `capabilities.shared` obeys the
 * rules of `kinds.ts` (`canHold`): in short, an exclusive request holds alone, a shared one beside
 * fewer than `limit` other shared holders, and no request passes a live waiter queued before it.
 */
export interface AcquireRequest {
  readonly key: string;
  readonly token: string;
  readonly ttlMs: number;
  /** How the request holds the key. Absent on every request to a backend without `shared`. @default 'exclusive' */
  readonly mode?: LockMode;
  /**
   * Shared requests only: the most shared holders the key may have at once, this one included
   * (`Infinity` for a reader). Every shared holder and waiter of a key must use the same limit: a
   * backend refuses another with `LimitMismatchError`.
   * @default Infinity
   */
  readonly limit?: number;
}

/** Identifies one holding of a key: the token proves ownership. */
export interface LeaseRef {
  readonly key: string;
  readonly token: string;
}

/** Per-call options every backend call accepts. */
export interface OperationOptions {
  /** Abort the call; the backend rejects with `signal.reason` and leaves nothing behind. */
  readonly signal?: AbortSignal;
}

/** Options of a queued {@link LockBackend.acquire}. */
export interface QueuedAcquireOptions extends OperationOptions {
  readonly signal: AbortSignal;
  /**
   * Call once the request has reached the store (queued, or granted). Until it is called, a
   * rejection with a retryable error means the store could not be reached at all, and the core
   * fails the caller's acquire at once with it (a down store is not a held lock); after it, the
   * core retries until the deadline. A backend that never calls it has every error of its first
   * call treated as "unreachable".
   */
  readonly onQueued?: () => void;
  /**
   * When present, a cheaper way to learn of the abort than listening on `signal`: calls
   * `listener` with the reason once the wait ends (deadline, the caller's abort, close), at once
   * if it already has, and returns a function that removes the listener. The core passes it and
   * builds `signal` (a controller) only if the backend reads it.
   */
  readonly onAbort?: (listener: (reason: unknown) => void) => () => void;
}

/** Outcome of an acquire attempt. */
export type AcquireResult =
  | {
      readonly acquired: true;
      /** Fencing token: strictly greater than every fence previously issued for this key. */
      readonly fence: bigint;
      /**
       * How long the lease is valid for, measured from `startedAt`. Defaults to the requested
       * `ttlMs`; a quorum backend returns less (the time its vote took eats into validity).
       */
      readonly validityMs?: number;
      /**
       * A local `Date.now()` no later than the moment the store started the lease's TTL. Defaults
       * to the time the core sent the request. A backend that hands a lock to a queued waiter
       * (long after the request was sent) must set this to the send time of a request that was
       * in flight when the store granted the lease, so that the local deadline stays early.
       */
      readonly startedAt?: number;
      /**
       * Optional: a signal the backend aborts when it knows the holding is gone before its TTL —
       * e.g. an etcd session whose keep-alives failed, aborted at the session's *local* deadline.
       * The core then marks the lease lost (reason `unreachable`, or the signal's LockLostError).
       * It may be shared by many holdings (etcd hands out its session's signal): the core removes
       * its listener as soon as the lease is released or lost.
       */
      readonly lost?: AbortSignal;
    }
  | {
      readonly acquired: false;
      /** Milliseconds until the current holding expires, when the store knows it. */
      readonly retryAfterMs?: number;
    };

/** Outcome of an extend: `extended`, or the lease is no longer this token's. */
export type ExtendResult =
  | { readonly extended: true; readonly validityMs?: number }
  | { readonly extended: false; readonly reason: 'expired' | 'not-owner' };

/**
 * Outcome of a release:
 * - `released`: this token held the key and no longer does;
 * - `expired`: nobody holds the key (the lease had already expired or was released);
 * - `not-owner`: another token holds the key now.
 */
export type ReleaseOutcome = 'released' | 'expired' | 'not-owner';

/** One holder of a key, as the store knows it. */
export interface HolderInfo {
  readonly token: string;
  readonly fence: bigint;
  /** Milliseconds until the holding expires unless extended; `null` when the store cannot tell. */
  readonly remainingMs: number | null;
  readonly mode: LockMode;
}

/**
 * What the store knows about the holders of a key. `token`, `fence` and `remainingMs` describe one
 * holder: the exclusive one, or of shared holders the newest (highest fence). A backend with
 * `capabilities.shared` also fills `mode`, `holders` and (for shared holders) `limit`; the lock
 * manager fills them for the others.
 */
export interface LockInfo {
  readonly key: string;
  readonly token: string;
  readonly fence: bigint;
  /** Milliseconds until the holding expires unless extended; `null` when the store cannot tell. */
  readonly remainingMs: number | null;
  /**
   * Number of queued waiters, where the store keeps a queue (the files backend, which has none:
   * the writers waiting behind shared holders, whose intents it keeps).
   */
  readonly waiters?: number;
  /** How the key is held now. @default 'exclusive' */
  readonly mode?: LockMode;
  /** Every holder, in fence order. @default the one holder above */
  readonly holders?: readonly HolderInfo[];
  /** Shared holders' limit (`Infinity` for readers); absent while held exclusively. */
  readonly limit?: number;
}

/** Stops a {@link LockBackend.watch} subscription. */
export type Unwatch = () => void | Promise<void>;

/**
 * A store that holds locks. Implement this to add a backend, then run the conformance suite from
 * `distlock/testing` against it.
 */
export interface LockBackend {
  /** Short name for messages and events, e.g. `redis`. Never contains credentials. */
  readonly name: string;
  readonly capabilities: BackendCapabilities;

  /** One attempt: take the key if free (or expired), never wait, never queue. */
  tryAcquire(request: AcquireRequest, options?: OperationOptions): Promise<AcquireResult>;

  /**
   * Optional server-side queue: wait in line until the key is granted to this request. Resolves
   * with an acquired result, or rejects with `options.signal.reason` once the signal aborts, after
   * removing the request from the queue (nothing may be left held or queued). Backends with a
   * FIFO queue (etcd revisions, handoff on release) implement this; the core then does not poll.
   * A backend without a queue may implement it too, to wait by itself for what its waiting must
   * keep up (the files backend: a waiting writer's intent, see `kinds.ts`).
   */
  acquire?(
    request: AcquireRequest,
    options: QueuedAcquireOptions,
  ): Promise<AcquireResult & { readonly acquired: true }>;

  /** Reset the lease's TTL to `ttlMs` from now, only if `lease.token` still holds the key. */
  extend(lease: LeaseRef, ttlMs: number, options?: OperationOptions): Promise<ExtendResult>;

  /** Release the key only if `lease.token` holds it. */
  release(lease: LeaseRef, options?: OperationOptions): Promise<ReleaseOutcome>;

  /** The current holder of `key`, or `null` when free. */
  inspect(key: string, options?: OperationOptions): Promise<LockInfo | null>;

  /**
   * Optional: call `onChange` (soon) after the key may have become free: a release, a handoff or
   * an expiry the store announces. Missed notifications are allowed; the core also polls.
   */
  watch?(key: string, onChange: () => void, options?: OperationOptions): Promise<Unwatch>;

  /** Optional, for operators: current holders whose key starts with `prefix`. */
  list?(prefix: string, options?: OperationOptions): Promise<LockInfo[]>;

  /** Optional, for operators: remove the key whoever holds it. True if something was removed. */
  forceRelease?(key: string, options?: OperationOptions): Promise<boolean>;

  /** Free connections the backend opened itself (a client passed in by the user stays open). */
  close(): Promise<void>;
}
