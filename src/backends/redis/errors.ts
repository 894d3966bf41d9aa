/**
 * How a failed Redis call becomes a typed error, for every client layer (ioredis, node-redis):
 * an error reply Redis sent is a `BackendError`, unless it means "try again later"; anything else
 * is a retryable `BackendUnavailableError`. When the client only reports its own bookkeeping for a
 * connection that is down, the connection's last error is the root cause at the end of the
 * `cause` chain. Every cause is a sanitized copy with the connection's secrets scrubbed. A client
 * layer says only how its library's errors read ({@link ClientErrorShape}).
 */
import { BackendError, BackendUnavailableError, LockError } from '../../core/errors.js';
import { redactSecrets, safeCause } from '../../core/redact.js';

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

/** What failures of one connection are reported with. */
export interface ErrorContext {
  /** Passwords (as written and decoded) to scrub from every message and cause. */
  readonly secrets: readonly string[];
  /** The connection's last error while it is not connected, sanitized; else undefined. */
  connectionError(): Error | undefined;
}

/** How one client library's error reads. */
export interface ClientErrorShape {
  /** An error reply Redis sent. */
  readonly isReply: boolean;
  /** The client's own report that the connection is down (the reason is the connection's). */
  readonly isConnectionFailure: boolean;
  /** The class name the sanitized copy keeps (node-redis leaves `name` as `Error`). */
  readonly name: string;
}

/** The typed error for a failed call, with secrets scrubbed from its message and cause. */
export function typedRedisError(
  error: unknown,
  operation: string,
  context: ErrorContext,
  shape: ClientErrorShape,
): LockError {
  if (error instanceof LockError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = redactSecrets(raw, context.secrets);
  if (shape.isReply && !TRANSIENT_REPLIES.some((prefix) => raw.startsWith(prefix))) {
    return new BackendError(`redis ${operation} failed: ${message}`, {
      cause: safeCause(error, context.secrets),
    });
  }
  const root = shape.isConnectionFailure ? context.connectionError() : undefined;
  if (root && root.message !== raw) {
    // The client's bookkeeping ("max retries per request") says less than the reason itself.
    const link = new Error(raw, { cause: root });
    Object.defineProperty(link, 'name', { value: shape.name, enumerable: false });
    return new BackendUnavailableError(
      `redis ${operation} failed: not connected (${root.message})`,
      { cause: safeCause(link, context.secrets) },
    );
  }
  return new BackendUnavailableError(`redis ${operation} failed: ${message}`, {
    cause: safeCause(error, context.secrets),
  });
}
