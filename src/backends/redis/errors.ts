/**
 * Maps ioredis failures onto distlock's typed errors: the store being unreachable or busy is a
 * retryable `BackendUnavailableError`; anything else Redis answered is a `BackendError`.
 */
import { BackendError, BackendUnavailableError, LockError } from '../../core/errors.js';

/** Reply prefixes that mean "try again later" rather than "your request is wrong". */
const TRANSIENT_REPLIES = [
  'LOADING',
  'BUSY',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'MASTERDOWN',
  'READONLY',
  'NOREPLICAS',
  'MOVED',
  'ASK',
];

/** The typed error for a failed Redis call. `secret` (a password) is scrubbed from the message. */
export function toLockError(error: unknown, operation: string, secret?: string): LockError {
  if (error instanceof LockError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = secret ? raw.split(secret).join('***') : raw;
  const isReply = error instanceof Error && error.name === 'ReplyError';
  if (isReply && !TRANSIENT_REPLIES.some((prefix) => message.startsWith(prefix))) {
    return new BackendError(`redis ${operation} failed: ${message}`, { cause: error });
  }
  return new BackendUnavailableError(`redis ${operation} failed: ${message}`, { cause: error });
}
