/**
 * Bounding store calls: whatever a backend does (answers late, never answers, ignores the abort it
 * was given), the caller's promise settles by its deadline, and a result that arrives after the
 * caller stopped waiting is handed to `onLate` (to give back a lock nobody is waiting for).
 */
import type { Deadline } from './abort.js';
import { BackendUnavailableError } from './errors.js';

/**
 * Settle with `promise`, or reject with `signal.reason` as soon as the signal aborts. A result that
 * arrives after the abort is handed to `onLate`.
 */
export function raceAbort<T>(
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

/**
 * Settle with `promise`, or reject with the deadline's reason once `wait` ends (plus `graceMs`, for
 * a backend that is itself leaving a queue and should be given the chance to finish). Uses the
 * deadline's listener rather than its signal: no AbortController is built for a call that
 * settles in time.
 */
export function raceDeadline<T>(
  promise: Promise<T>,
  wait: Deadline,
  onLate: (value: T) => void,
  graceMs = 0,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const giveUp = (reason: unknown) => {
      if (settled) return;
      settled = true;
      reject(reason);
    };
    const stopListening = wait.onAbort((reason) => {
      if (graceMs <= 0) giveUp(reason);
      else graceTimer = setTimeout(() => giveUp(reason), graceMs);
    });
    promise.then(
      (value) => {
        stopListening();
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        if (settled) onLate(value);
        else {
          settled = true;
          resolve(value);
        }
      },
      (error: unknown) => {
        stopListening();
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        if (!settled) {
          settled = true;
          reject(error);
        }
      },
    );
  });
}

/**
 * Settle with `promise`, or reject with a retryable `BackendUnavailableError` after `ms` (the
 * operation timeout, a backstop for a store or backend that never answers). `describe` names the
 * call for the message, e.g. `redis release`.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  describe: () => string,
  onLate?: (value: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new BackendUnavailableError(`${describe()} did not answer within ${ms} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (timedOut) onLate?.(value);
        else resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (!timedOut) reject(error);
      },
    );
  });
}
