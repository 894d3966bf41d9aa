/**
 * Turning filesystem errors into distlock errors. EEXIST and ENOENT are expected outcomes and are
 * handled where they occur; everything else reaching the caller is a `LockError` with the original
 * error as `cause`.
 */
import { BackendError, BackendUnavailableError, type LockError } from '../../core/errors.js';

/** Errors a later attempt may not hit: out of descriptors, a busy or briefly unhealthy disk. */
const TRANSIENT = new Set([
  'EMFILE',
  'ENFILE',
  'EAGAIN',
  'EBUSY',
  'EINTR',
  'EIO',
  'ENOSPC',
  'ETIMEDOUT',
]);

/** True if `error` is a Node system error with this `code`. */
export function hasCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

/** True for an error a later attempt may not hit (see TRANSIENT). */
export function isTransient(error: unknown): boolean {
  return TRANSIENT.has((error as NodeJS.ErrnoException | null)?.code ?? '');
}

/** Wrap an unexpected filesystem error; `action` says what was being done, e.g. `read lock`. */
export function toLockError(error: unknown, action: string): LockError {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
  const message = `files backend: cannot ${action} (${code})`;
  return TRANSIENT.has(code)
    ? new BackendUnavailableError(message, { cause: error })
    : new BackendError(message, { cause: error });
}
