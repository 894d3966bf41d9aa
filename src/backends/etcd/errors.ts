/**
 * Maps `etcd3` client errors onto distlock's: connection trouble and elections become a retryable
 * `BackendUnavailableError`, everything else a `BackendError`; the original error is the `cause`.
 */
import { EtcdLeaseInvalidError, isRecoverableError } from 'etcd3';
import { BackendError, BackendUnavailableError, LockError } from '../../core/errors.js';

/** etcd server messages that mean "try again soon" (elections, overload, shutdown). */
const TRANSIENT_MESSAGES = [
  'leader changed',
  'no leader',
  'request timed out',
  'timed out',
  'too many requests',
  'server stopped',
  'not capable',
  'unhealthy cluster',
];

/** True when the error is a transient failure worth retrying after a delay. */
export function isTransientEtcdError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof LockError) return error.retryable;
  if (isRecoverableError(error)) return true;
  // cockatiel's open circuit (every host marked failed), grpc-js connection failures. cockatiel's
  // errors keep the name `Error`: match their class names too.
  const kind = error.constructor.name;
  if (kind === 'BrokenCircuitError' || kind === 'TaskCancelledError') return true;
  if (error.name === 'BrokenCircuitError' || error.name === 'TaskCancelledError') return true;
  if (error.constructor.name === 'ClientRuntimeError') return true;
  const message = error.message.toLowerCase();
  return TRANSIENT_MESSAGES.some((text) => message.includes(text));
}

/** True when etcd says the lease is gone (expired or revoked). */
export function isLeaseGone(error: unknown): boolean {
  return error instanceof EtcdLeaseInvalidError;
}

/** Wrap any error from an etcd call made for `what` (e.g. `acquire`) in a `LockError`. */
export function toLockError(error: unknown, what: string): LockError {
  if (error instanceof LockError) return error;
  const detail =
    error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
  const message = `etcd ${what} failed (${detail})`;
  return isTransientEtcdError(error)
    ? new BackendUnavailableError(message, { cause: error })
    : new BackendError(message, { cause: error });
}
