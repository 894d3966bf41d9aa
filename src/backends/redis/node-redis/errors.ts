/**
 * Maps node-redis failures onto distlock's typed errors, as `../ioredis/errors.ts` does for
 * ioredis: the store being unreachable or busy is a retryable `BackendUnavailableError`; anything
 * else Redis answered (an `ErrorReply`) is a `BackendError`.
 *
 * node-redis rejects a call made while the connection is down with its own bookkeeping ("The
 * client is offline", "The client is closed", "Socket closed unexpectedly") and emits the reason
 * (`connect ECONNREFUSED …`) as an `error` event. {@link NodeRedisConnectionErrors} remembers that
 * event, and the typed error's `cause` chain ends at it. Every cause is a sanitized copy with the
 * connection's secrets scrubbed.
 */
import { BackendError, BackendUnavailableError, LockError } from '../../../core/errors.js';
import { redactSecrets, safeCause } from '../../../core/redact.js';
import type { NodeRedisClient } from './client.js';

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

/** node-redis's own reports of a connection that is down (its class names). */
const CONNECTION_FAILURES = new Set([
  'ClientClosedError',
  'ClientOfflineError',
  'SocketClosedUnexpectedlyError',
  'DisconnectsClientError',
  'AbortError',
  // The master of a cluster slot is disconnected (`cluster-client.ts`).
  'ClusterNodeOfflineError',
]);

/** The class names along `error`'s prototype chain (node-redis leaves `name` as `Error`). */
function classNames(error: object): string[] {
  const names: string[] = [];
  for (let proto = Object.getPrototypeOf(error) as object | null; proto;) {
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string') names.push(name);
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return names;
}

/** True for an error reply of the server (`ErrorReply` and its subclasses). */
export function isErrorReply(error: unknown): error is Error {
  return error instanceof Error && classNames(error).includes('ErrorReply');
}

/**
 * Remembers the last error a client (the user's, our own, or a blocking connection) emitted, until
 * it is ready again. Listening to `error` also keeps node-redis from crashing the process: an
 * `error` event without a listener is thrown.
 */
export class NodeRedisConnectionErrors {
  /** Passwords (as written and decoded) to scrub from every message and cause. */
  readonly secrets: readonly string[];
  readonly #clients = new Map<
    NodeRedisClient,
    { error: (error: unknown) => void; ready: () => void }
  >();
  #last: unknown;
  /** Told of every connection error of a followed client (fails calls waiting for a connect). */
  onError: ((error: unknown) => void) | undefined;

  constructor(secrets: readonly string[]) {
    this.secrets = secrets;
  }

  follow(client: NodeRedisClient): void {
    const listeners = {
      error: (error: unknown) => {
        this.#last = error;
        this.onError?.(error);
      },
      ready: () => {
        this.#last = undefined;
      },
    };
    client.on('error', listeners.error);
    client.on('ready', listeners.ready);
    this.#clients.set(client, listeners);
  }

  unfollow(client: NodeRedisClient): void {
    const listeners = this.#clients.get(client);
    if (!listeners) return;
    this.#clients.delete(client);
    client.off('error', listeners.error);
    client.off('ready', listeners.ready);
  }

  /** The last connection error since the client was last ready, sanitized; else undefined. */
  connectionError(): Error | undefined {
    return this.#last === undefined ? undefined : safeCause(this.#last, this.secrets);
  }

  /** True while a connection error is remembered (the client is down, not just connecting). */
  get failed(): boolean {
    return this.#last !== undefined;
  }
}

/**
 * The typed error for a failed node-redis call, with secrets scrubbed from its message and cause.
 * A failure because the connection is down gets the connection's last error as its root cause.
 */
export function toLockError(
  error: unknown,
  operation: string,
  context: NodeRedisConnectionErrors,
): LockError {
  if (error instanceof LockError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = redactSecrets(raw, context.secrets);
  if (isErrorReply(error) && !TRANSIENT_REPLIES.some((prefix) => raw.startsWith(prefix))) {
    return new BackendError(`redis ${operation} failed: ${message}`, {
      cause: safeCause(error, context.secrets),
    });
  }
  const bookkeeping =
    error instanceof Error && classNames(error).some((name) => CONNECTION_FAILURES.has(name));
  const root = bookkeeping ? context.connectionError() : undefined;
  if (root && root.message !== raw) {
    return new BackendUnavailableError(
      `redis ${operation} failed: not connected (${root.message})`,
      { cause: chained(error as Error, root, context.secrets) },
    );
  }
  return new BackendUnavailableError(`redis ${operation} failed: ${message}`, {
    cause: safeCause(error, context.secrets),
  });
}

/** A sanitized copy of `error` whose cause is `root` (already sanitized). */
function chained(error: Error, root: Error, secrets: readonly string[]): Error {
  const link = new Error(error.message, { cause: root });
  Object.defineProperty(link, 'name', {
    value: classNames(error)[0] ?? error.name,
    enumerable: false,
  });
  return safeCause(link, secrets);
}
