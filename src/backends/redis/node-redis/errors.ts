/**
 * What node-redis's errors mean for the shared mapping in `../errors.ts` (the policy lives there):
 * an `ErrorReply` is Redis's answer.
 *
 * node-redis rejects a call made while the connection is down with its own bookkeeping ("The
 * client is offline", "The client is closed", "Socket closed unexpectedly") and emits the reason
 * (`connect ECONNREFUSED …`) as an `error` event. {@link NodeRedisConnectionErrors} remembers that
 * event, and the typed error's `cause` chain ends at it. Every cause is a sanitized copy with the
 * connection's secrets scrubbed.
 */
import type { LockError } from '../../../core/errors.js';
import { safeCause } from '../../../core/redact.js';
import { typedRedisError } from '../errors.js';
import type { NodeRedisClient } from './client.js';

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

/** The typed error for a failed node-redis call (see `../errors.ts`). */
export function toLockError(
  error: unknown,
  operation: string,
  context: NodeRedisConnectionErrors,
): LockError {
  const names = error instanceof Error ? classNames(error) : [];
  return typedRedisError(error, operation, context, {
    isReply: names.includes('ErrorReply'), // and its subclasses
    isConnectionFailure: names.some((name) => CONNECTION_FAILURES.has(name)),
    name: names[0] ?? (error instanceof Error ? error.name : 'Error'),
  });
}
