/**
 * Every error distlock throws is a {@link LockError} with a literal `code`, a `retryable` flag and,
 * where one exists, a `cause`: a sanitized copy of the original (see `redact.ts`), so that no secret
 * a client library put on its error can reach a log. Expected outcomes (a lock held by someone
 * else, a release by a non-owner) are values, not errors; only misuse and infrastructure failures
 * throw.
 */

import { safeCause } from './redact.js';

/** All error codes, one per subclass. */
export type LockErrorCode =
  | 'INVALID_ARGUMENT'
  | 'TIMEOUT'
  | 'LOCK_LOST'
  | 'UNAVAILABLE'
  | 'BACKEND'
  | 'UNSUPPORTED'
  | 'LIMIT_MISMATCH'
  | 'STALE_FENCE'
  | 'CLOSED';

/** Base class of every error distlock throws. */
export class LockError extends Error {
  /** Stable machine-readable code; switch on this rather than on the class or the message. */
  readonly code: LockErrorCode;
  /** True when the same call may succeed if simply tried again later. */
  readonly retryable: boolean;

  constructor(
    code: LockErrorCode,
    message: string,
    options: { retryable?: boolean; cause?: unknown } = {},
  ) {
    // The cause is copied safe (see redact.ts): a client library's error may carry a password.
    super(message, options.cause === undefined ? undefined : { cause: safeCause(options.cause) });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** A caller passed a bad option or argument; `option` names it. Never retryable. */
export class InvalidArgumentError extends LockError {
  declare readonly code: 'INVALID_ARGUMENT';
  /** The option or argument at fault, e.g. `ttlMs` or `key`. */
  readonly option: string;

  constructor(option: string, message: string, options: { cause?: unknown } = {}) {
    super('INVALID_ARGUMENT', `${option}: ${message}`, options);
    this.option = option;
  }
}

/** The lock was not acquired before the wait deadline (`waitMs`) or the retry budget ran out. */
export class LockTimeoutError extends LockError {
  declare readonly code: 'TIMEOUT';
  readonly key: string;
  /** How long the caller waited, in milliseconds. */
  readonly waitedMs: number;

  constructor(key: string, waitedMs: number, options: { cause?: unknown } = {}) {
    super('TIMEOUT', `lock "${key}" was not acquired within ${waitedMs} ms`, {
      retryable: true,
      ...options,
    });
    this.key = key;
    this.waitedMs = waitedMs;
  }
}

/** Why a lease stopped being held without its holder releasing it. */
export type LockLostReason =
  /** The lease's local deadline passed (it was not extended in time). */
  | 'expired'
  /** The store says another token holds the key now, or nobody does. */
  | 'not-owner'
  /** The store could not be reached to keep the lease alive (session or keep-alive lost). */
  | 'unreachable';

/** A lease is no longer held. Used as `lease.signal.reason` and thrown by `extend()`. */
export class LockLostError extends LockError {
  declare readonly code: 'LOCK_LOST';
  readonly key: string;
  readonly reason: LockLostReason;

  constructor(key: string, reason: LockLostReason, options: { cause?: unknown } = {}) {
    super('LOCK_LOST', `lock "${key}" was lost (${reason})`, options);
    this.key = key;
    this.reason = reason;
  }
}

/** The store could not be reached or did not answer in time. Retryable. */
export class BackendUnavailableError extends LockError {
  declare readonly code: 'UNAVAILABLE';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('UNAVAILABLE', message, { retryable: true, ...options });
  }
}

/** The store answered with something unexpected (a script error, a corrupt record). */
export class BackendError extends LockError {
  declare readonly code: 'BACKEND';

  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super('BACKEND', message, options);
  }
}

/** The backend cannot do what was asked (e.g. `list` on a store that cannot enumerate locks). */
export class UnsupportedError extends LockError {
  declare readonly code: 'UNSUPPORTED';

  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

/**
 * A shared lock's key is held or awaited with another `limit` than this call's: a semaphore used
 * with two limits, or readers (no limit) and a semaphore on one key. Every shared holder of a key
 * must agree on its limit; change a semaphore's limit once nobody holds or awaits it. Not retryable.
 */
export class LimitMismatchError extends LockError {
  declare readonly code: 'LIMIT_MISMATCH';
  readonly key: string;
  /** The limit this call asked for (`Infinity` for a reader). */
  readonly limit: number;
  /** The limit the key's current shared holders or waiters use. */
  readonly heldLimit: number;

  constructor(key: string, limit: number, heldLimit: number) {
    super(
      'LIMIT_MISMATCH',
      `lock "${key}" is shared with ${describeLimit(heldLimit)}; this call asked for ${describeLimit(limit)}`,
    );
    this.key = key;
    this.limit = limit;
    this.heldLimit = heldLimit;
  }
}

function describeLimit(limit: number): string {
  return limit === Infinity ? 'no limit (readers)' : `limit ${limit}`;
}

/** The lock manager or backend was closed. */
export class LockClosedError extends LockError {
  declare readonly code: 'CLOSED';

  constructor(what = 'lock manager') {
    super('CLOSED', `${what} is closed`);
  }
}

/** True for any error distlock throws. */
export function isLockError(error: unknown): error is LockError {
  return error instanceof LockError;
}
