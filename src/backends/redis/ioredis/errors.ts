/**
 * What ioredis's errors mean for the shared mapping in `../errors.ts` (the policy lives there).
 *
 * ioredis reports a call that failed because the connection is down with its own bookkeeping
 * ("Reached the max retries per request limit", "Connection is closed."); the reason is the
 * connection's last error, which it emits as an `error` event instead. {@link ConnectionErrors}
 * remembers that error, and the typed error's `cause` chain ends at it (`connect ECONNREFUSED
 * 127.0.0.1:1`). Every cause is a sanitized copy with the connection's secrets scrubbed.
 */
import type { LockError } from '../../../core/errors.js';
import { safeCause } from '../../../core/redact.js';
import { typedRedisError, type ErrorContext } from '../errors.js';
import type { RedisClient } from './script-runner.js';

export type { ErrorContext } from '../errors.js';

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

/** The typed error for a failed ioredis call (see `../errors.ts`). */
export function toLockError(error: unknown, operation: string, context: ErrorContext): LockError {
  const name = error instanceof Error ? error.name : 'Error';
  return typedRedisError(error, operation, context, {
    isReply: name === 'ReplyError',
    isConnectionFailure: isConnectionFailure(error),
    name,
  });
}
