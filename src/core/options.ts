/**
 * Defaults for every option, in one frozen object, and the validators that name the bad option.
 */
import { InvalidArgumentError } from './errors.js';

/** The largest delay `setTimeout` honours; longer TTLs would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Retry/backoff options for waiting acquires, in the shape redsync users know. */
export interface RetryOptions {
  /**
   * Attempts before giving up (the first attempt counts). The deadline (`waitMs`) still applies.
   * @default Infinity
   */
  readonly tries?: number;
  /**
   * Delay before the second attempt; later delays grow by `factor`.
   * @default 25
   */
  readonly delayMs?: number;
  /**
   * Cap on the delay between attempts.
   * @default 500
   */
  readonly maxDelayMs?: number;
  /**
   * Growth factor of the delay per attempt.
   * @default 2
   */
  readonly factor?: number;
  /**
   * Fraction of each delay that is randomised (0 = none, 1 = "full jitter"), so that waiters do
   * not retry in lockstep.
   * @default 0.5
   */
  readonly jitter?: number;
}

/** Resolved retry options: every field present. */
export type ResolvedRetryOptions = {
  readonly [K in keyof RetryOptions]-?: NonNullable<RetryOptions[K]>;
};

/** Every default in one place. */
export const DEFAULTS = Object.freeze({
  /** Lease time-to-live. */
  ttlMs: 30_000,
  /** How long `acquire` waits for a held lock before `LockTimeoutError`. */
  waitMs: 10_000,
  /** Prepended to every key before it reaches the backend. */
  prefix: '',
  /** Clock drift allowance: `floor(ttlMs * driftFactor) + 2` ms is taken off every local deadline. */
  driftFactor: 0.01,
  /**
   * The longest the core waits for one store call (an attempt, an extend, a release, an inspect)
   * before it gives up with a retryable `BackendUnavailableError`: a backstop above the backends'
   * own timeouts, so that no call hangs on a store (or a backend) that never answers.
   */
  operationTimeoutMs: 10_000,
  retry: Object.freeze({
    tries: Infinity,
    delayMs: 25,
    maxDelayMs: 500,
    factor: 2,
    jitter: 0.5,
  }) satisfies ResolvedRetryOptions,
});

/** The longest key the core accepts, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 1024;

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** A key: a non-empty, well-formed Unicode string of at most {@link MAX_KEY_LENGTH} code units. */
export function validateKey(key: unknown, option = 'key'): string {
  if (typeof key !== 'string')
    throw new InvalidArgumentError(option, `must be a string, got ${typeof key}`);
  if (key.length === 0) throw new InvalidArgumentError(option, 'must not be empty');
  if (key.length > MAX_KEY_LENGTH) {
    throw new InvalidArgumentError(
      option,
      `must be at most ${MAX_KEY_LENGTH} characters, got ${key.length}`,
    );
  }
  // A lone surrogate has no UTF-8 form: stores that encode keys would turn 'a\uD800b' into
  // 'a\uFFFDb' and two different keys into one lock. In a `u` regex a paired surrogate is one code
  // point, so this matches lone ones only.
  if (LONE_SURROGATE.test(key)) {
    throw new InvalidArgumentError(
      option,
      'must be well-formed Unicode (it contains a lone UTF-16 surrogate)',
    );
  }
  return key;
}

/** A positive integer number of milliseconds a timer can honour. */
export function validateTtl(value: unknown, option = 'ttlMs'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw new InvalidArgumentError(
      option,
      `must be an integer from 1 to ${MAX_TIMER_MS}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * A TTL the backend's store can honour: {@link validateTtl}, then within the backend's
 * `capabilities.minTtlMs`/`maxTtlMs` (e.g. Azure blob leases: at least 15 s).
 */
export function validateBackendTtl(
  value: unknown,
  capabilities: { readonly minTtlMs?: number; readonly maxTtlMs?: number },
  backendName: string,
  option = 'ttlMs',
): number {
  const ttlMs = validateTtl(value, option);
  const { minTtlMs, maxTtlMs } = capabilities;
  if (minTtlMs !== undefined && ttlMs < minTtlMs) {
    throw new InvalidArgumentError(
      option,
      `the ${backendName} backend holds leases of at least ${minTtlMs} ms, got ${ttlMs}`,
    );
  }
  if (maxTtlMs !== undefined && ttlMs > maxTtlMs) {
    throw new InvalidArgumentError(
      option,
      `the ${backendName} backend holds leases of at most ${maxTtlMs} ms, got ${ttlMs}`,
    );
  }
  return ttlMs;
}

/** A timeout: a positive integer number of milliseconds a timer can honour. */
export function validateTimeout(value: unknown, option: string): number {
  return validateTtl(value, option);
}

/** A wait of zero or more milliseconds, or `Infinity` to wait without a deadline. */
export function validateWait(value: unknown, option = 'waitMs'): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new InvalidArgumentError(
      option,
      `must be a number >= 0 (or Infinity), got ${String(value)}`,
    );
  }
  if (value !== Infinity && (!Number.isInteger(value) || value > MAX_TIMER_MS)) {
    throw new InvalidArgumentError(
      option,
      `must be an integer up to ${MAX_TIMER_MS} or Infinity, got ${String(value)}`,
    );
  }
  return value;
}

export function validateToken(value: unknown, option = 'token'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
    throw new InvalidArgumentError(option, 'must be a non-empty string of at most 256 characters');
  }
  return value;
}

export function validateSignal(value: unknown, option = 'signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal))
    throw new InvalidArgumentError(option, 'must be an AbortSignal');
  return value;
}

export function validateRetry(value: RetryOptions | undefined): ResolvedRetryOptions {
  if (value === undefined) return DEFAULTS.retry;
  if (typeof value !== 'object' || value === null)
    throw new InvalidArgumentError('retry', 'must be an object');
  const resolved = { ...DEFAULTS.retry, ...stripUndefined(value) };
  const { tries, delayMs, maxDelayMs, factor, jitter } = resolved;
  if (!(tries === Infinity || (Number.isInteger(tries) && tries >= 1))) {
    throw new InvalidArgumentError(
      'retry.tries',
      `must be an integer >= 1 or Infinity, got ${String(tries)}`,
    );
  }
  if (!Number.isFinite(delayMs) || delayMs < 0)
    throw new InvalidArgumentError('retry.delayMs', `must be >= 0, got ${String(delayMs)}`);
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < delayMs) {
    throw new InvalidArgumentError(
      'retry.maxDelayMs',
      `must be >= retry.delayMs, got ${String(maxDelayMs)}`,
    );
  }
  if (!Number.isFinite(factor) || factor < 1)
    throw new InvalidArgumentError('retry.factor', `must be >= 1, got ${String(factor)}`);
  if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1) {
    throw new InvalidArgumentError(
      'retry.jitter',
      `must be between 0 and 1, got ${String(jitter)}`,
    );
  }
  return Object.freeze(resolved);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Milliseconds taken off a lease's local deadline so it fires before the store's. */
export function driftMs(ttlMs: number, driftFactor: number): number {
  return Math.floor(ttlMs * driftFactor) + 2;
}
