/**
 * Maps ioredis failures onto distlock's typed errors: the store being unreachable or busy is a
 * retryable `BackendUnavailableError`; anything else Redis answered is a `BackendError`.
 *
 * ioredis reports a call that failed because the connection is down with its own bookkeeping
 * ("Reached the max retries per request limit", "Connection is closed."); the reason is the
 * connection's last error, which it emits as an `error` event instead. {@link ConnectionErrors}
 * remembers that error, and the typed error's `cause` chain ends at it (`connect ECONNREFUSED
 * 127.0.0.1:1`). Every cause is a sanitized copy with the connection's secrets scrubbed.
 */
import { BackendError, BackendUnavailableError, LockError } from '../../../core/errors.js';
import { redactSecrets, safeCause } from '../../../core/redact.js';
import type { RedisClient } from './script-runner.js';

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

/**
 * Remembers the last connection-level error a client emitted (a refused connect, a timeout, a
 * reset), until it is connected again. Listening to `error` also keeps ioredis from printing
 * each one as "Unhandled error event".
 */
export class ConnectionErrors implements ErrorContext {
  readonly secrets: readonly string[];
  readonly #clients = new Map<
    RedisClient,
    { error: (error: unknown) => void; ready: () => void; close: () => void }
  >();
  #last: unknown;

  constructor(secrets: readonly string[]) {
    this.secrets = secrets;
  }

  /** Start listening to `client` (the user's, our own, or a blocking connection). */
  follow(client: RedisClient): void {
    const listeners = {
      error: (error: unknown) => {
        this.#last = error;
      },
      ready: () => {
        this.#last = undefined;
      },
      // A server that went away without an error (killed: the socket just ends) until a
      // reconnect attempt says more.
      close: () => {
        this.#last ??= new Error('the connection to Redis was closed');
      },
    };
    client.on('error', listeners.error);
    client.on('ready', listeners.ready);
    client.on('close', listeners.close);
    this.#clients.set(client, listeners);
  }

  /** Stop listening to `client` (a user's client outlives the backend). */
  unfollow(client: RedisClient): void {
    const listeners = this.#clients.get(client);
    if (!listeners) return;
    this.#clients.delete(client);
    client.off('error', listeners.error);
    client.off('ready', listeners.ready);
    client.off('close', listeners.close);
  }

  connectionError(): Error | undefined {
    return this.#last === undefined ? undefined : safeCause(this.#last, this.secrets);
  }
}

/** True for ioredis's own reports of a connection that is down (not a Redis reply). */
function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error) || error.name === 'ReplyError') return false;
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    error.message === 'Connection is closed.' ||
    error.message.startsWith("Stream isn't writeable")
  );
}

/**
 * The typed error for a failed Redis call, with secrets scrubbed from its message and cause.
 * A failure because the connection is down gets the connection's last error as its root cause.
 */
export function toLockError(error: unknown, operation: string, context: ErrorContext): LockError {
  if (error instanceof LockError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = redactSecrets(raw, context.secrets);
  const isReply = error instanceof Error && error.name === 'ReplyError';
  if (isReply && !TRANSIENT_REPLIES.some((prefix) => raw.startsWith(prefix))) {
    return new BackendError(`redis ${operation} failed: ${message}`, {
      cause: safeCause(error, context.secrets),
    });
  }
  const root = isConnectionFailure(error) ? context.connectionError() : undefined;
  if (root) {
    // ioredis's bookkeeping ("max retries per request") says less than the reason itself.
    return new BackendUnavailableError(
      `redis ${operation} failed: not connected (${root.message})`,
      {
        cause: chained(error as Error, root, context.secrets),
      },
    );
  }
  return new BackendUnavailableError(`redis ${operation} failed: ${message}`, {
    cause: safeCause(error, context.secrets),
  });
}

/** A sanitized copy of `error` whose cause is `root` (already sanitized). */
function chained(error: Error, root: Error, secrets: readonly string[]): Error {
  const link = new Error(error.message, { cause: root });
  Object.defineProperty(link, 'name', { value: error.name, enumerable: false });
  return safeCause(link, secrets);
}
