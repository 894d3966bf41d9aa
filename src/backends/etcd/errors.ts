/**
 * Maps `etcd3` client errors onto distlock's: connection trouble and elections become a retryable
 * `BackendUnavailableError`, everything else a `BackendError`.
 *
 * The cause chain leads to the root cause where there is one: grpc-js reports a refused connection
 * only as text inside its own error ("No connection established. Last error: connect ECONNREFUSED
 * 127.0.0.1:1"), and an etcd that never answers only as a missed deadline. So the cause attached is
 * a copy of the client's error whose own `cause` is the system error rebuilt from that text
 * (`connect ECONNREFUSED 127.0.0.1:1`, with `code`, `syscall`, `address`, `port`), or an
 * `ETIMEDOUT` naming the endpoints. `LockError` sanitizes the whole chain (see `core/redact.ts`).
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

/** cockatiel's open circuit (every host marked failed): its errors keep the name `Error`. */
function isBrokenCircuit(error: Error): boolean {
  return (
    error.constructor.name === 'BrokenCircuitError' ||
    error.name === 'BrokenCircuitError' ||
    'isBrokenCircuitError' in error
  );
}

/** True when the error is a transient failure worth retrying after a delay. */
export function isTransientEtcdError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof LockError) return error.retryable;
  if (isRecoverableError(error) || isBrokenCircuit(error)) return true;
  const kind = error.constructor.name;
  if (kind === 'TaskCancelledError' || error.name === 'TaskCancelledError') return true;
  if (kind === 'ClientRuntimeError') return true;
  const message = error.message.toLowerCase();
  return TRANSIENT_MESSAGES.some((text) => message.includes(text));
}

/** True when etcd says the lease is gone (expired or revoked). */
export function isLeaseGone(error: unknown): boolean {
  return error instanceof EtcdLeaseInvalidError;
}

/** True when the error says no connection to etcd could be made (as opposed to etcd refusing). */
export function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (isBrokenCircuit(error)) return true;
  const kind = error.constructor.name;
  return kind === 'GRPCUnavailableError' || kind === 'GRPCDeadlineExceededError';
}

/** What the caller knows about the connection when an error arrives. */
export interface ErrorContext {
  /** `host:port` of every endpoint the client was given. */
  readonly endpoints: readonly string[];
  /** etcd has not answered this backend yet: a missed deadline means nobody answered at all. */
  readonly firstContact: boolean;
  /** The deadline that was missed, for the message. */
  readonly deadlineMs: number;
  /** The root cause seen last, for an open circuit (which says nothing of why it opened). */
  readonly lastRoot: Error | undefined;
}

/**
 * The system error grpc-js describes in a message such as `14 UNAVAILABLE: No connection
 * established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. …`, rebuilt with the fields
 * Node's own has, or `undefined`.
 */
function systemErrorIn(message: string): Error | undefined {
  const match =
    /Last error: (?:[A-Za-z]*Error: )?(([a-z]+) (E[A-Z0-9_]+)(?: (?:(\[[0-9a-f:.]+\]|[^\s:]+):(\d+)|\S+?))?)(?=\.?(?:\s|$))/.exec(
      message,
    );
  if (!match) return undefined;
  const [, text, syscall, code, address, port] = match;
  const error = new Error(text);
  Object.assign(error, {
    code,
    syscall,
    ...(address !== undefined ? { address: address.replace(/^\[|\]$/g, '') } : {}),
    ...(port !== undefined ? { port: Number(port) } : {}),
  });
  return error;
}

/** The root cause of `error`, where the client's error only describes it. */
export function rootCauseOf(error: unknown, context: ErrorContext): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  const fromText = systemErrorIn(error.message);
  if (fromText) return fromText;
  if (isBrokenCircuit(error)) return context.lastRoot;
  if (context.firstContact && error.constructor.name === 'GRPCDeadlineExceededError') {
    const where = context.endpoints.join(', ');
    return Object.assign(
      new Error(`no answer from etcd at ${where} within ${context.deadlineMs} ms`),
      { code: 'ETIMEDOUT', syscall: 'connect' },
    );
  }
  return undefined;
}

/**
 * Wrap any error from an etcd call made for `what` (e.g. `acquire`) in a `LockError`, with the
 * root cause (when known) at the end of its cause chain and in its message.
 */
export function toLockError(error: unknown, what: string, context?: ErrorContext): LockError {
  if (error instanceof LockError) return error;
  const kind = error instanceof Error ? error.constructor.name : 'Error';
  const detail = error instanceof Error ? `${kind}: ${error.message}` : String(error);
  const root = context ? rootCauseOf(error, context) : undefined;
  let cause = error;
  if (root && error instanceof Error && root !== error) {
    // A copy, so that the client's error object itself is not changed.
    const link = new Error(error.message, { cause: root });
    Object.defineProperty(link, 'name', { value: kind, enumerable: false });
    cause = link;
  }
  const message = root
    ? `etcd ${what} failed: cannot reach etcd (${root.message})`
    : `etcd ${what} failed (${detail})`;
  return isTransientEtcdError(error)
    ? new BackendUnavailableError(message, { cause })
    : new BackendError(message, { cause });
}
