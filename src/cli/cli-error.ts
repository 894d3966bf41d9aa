/**
 * Turning any error into one redacted line and an exit code. Expected failures (bad usage, lock
 * not acquired, backend down) are one line without a stack; only unexpected ones get more detail,
 * and only when `DISTLOCK_DEBUG=1`.
 */
import { MissingClientLibraryError, redactSecrets } from '../backend-url.js';
import { LockDirectoryError } from '../backends/files/lock-directory.js';
import { isLockError, LockTimeoutError } from '../core/errors.js';
import { ExitCode } from './exit-codes.js';

/** A failure the command reports with a fixed exit code and a message meant for a person. */
export class CliError extends Error {
  /** The process exit code this failure maps to. */
  readonly exitCode: number;

  constructor(exitCode: number, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Bad usage or configuration (exit code 64). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(ExitCode.USAGE, message);
    this.name = 'UsageError';
  }
}

/** A Node.js system error (ECONNREFUSED, EACCES…): it has a `syscall`, unlike `ERR_*` errors. */
function isSystemError(error: unknown): boolean {
  return typeof (error as { syscall?: unknown } | null)?.syscall === 'string';
}

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof MissingClientLibraryError) return ExitCode.CONFIG;
  // The files backend's directory cannot be created or is unsafe: the backend cannot be used as
  // configured, like a store that cannot be reached (the URL itself was well-formed).
  if (error instanceof LockDirectoryError) return ExitCode.UNAVAILABLE;
  if (error instanceof LockTimeoutError) {
    // Waiting that timed out only because the store never answered is an outage, not contention.
    return isLockError(error.cause) && error.cause.code === 'UNAVAILABLE'
      ? ExitCode.UNAVAILABLE
      : ExitCode.NOT_ACQUIRED;
  }
  if (isLockError(error)) {
    switch (error.code) {
      case 'INVALID_ARGUMENT':
      case 'UNSUPPORTED':
      case 'LIMIT_MISMATCH':
        return ExitCode.USAGE;
      case 'LOCK_LOST':
        return ExitCode.LOCK_LOST;
      case 'UNAVAILABLE':
      case 'BACKEND':
      case 'CLOSED':
        return ExitCode.UNAVAILABLE;
      default:
        return ExitCode.INTERNAL;
    }
  }
  if (isSystemError(error)) {
    // A system error from the store's client (ECONNREFUSED…) or the file system (EACCES on the
    // lock directory): the backend cannot be used as configured.
    return ExitCode.UNAVAILABLE;
  }
  return ExitCode.INTERNAL;
}

/** One line describing `error`, secrets redacted, causes appended when they add information. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const text =
      current instanceof Error ? current.message || current.name : String(current as string);
    if (text !== '' && !parts.some((part) => part.includes(text))) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  const line = parts.join(': ').replace(/\s*\n\s*/g, ' ');
  const unexpected = !(error instanceof CliError) && exitCodeFor(error) === ExitCode.INTERNAL;
  return redactSecrets(unexpected ? `internal error: ${line}` : line);
}

/**
 * Errors that only say how a client library gave up (its retry budget, its circuit breaker), not
 * what went wrong: never shown as a root cause.
 */
const CLIENT_INTERNAL_NAMES: ReadonlySet<string> = new Set([
  'MaxRetriesPerRequestError',
  'BrokenCircuitError',
  'IsolatedCircuitError',
  'BulkheadRejectedError',
  'TaskCancelledError',
]);

function isClientInternal(error: Error): boolean {
  return (
    CLIENT_INTERNAL_NAMES.has(error.name) ||
    CLIENT_INTERNAL_NAMES.has(error.constructor.name) ||
    /max retries per request|circuit breaker/i.test(error.message)
  );
}

/**
 * The root cause of a failure, worth showing a person: the deepest error of the `cause` chain that
 * is not one of distlock's own wrappers (their messages name internal steps) and not a client
 * library's internal state. E.g. `connect ECONNREFUSED 127.0.0.1:1`. Undefined when there is none.
 */
export function rootCause(error: unknown): Error | undefined {
  const chain: Error[] = [];
  for (let current = error; current instanceof Error; current = current.cause) {
    if (chain.includes(current) || chain.length >= 16) break;
    chain.push(current);
  }
  return chain
    .slice(1)
    .reverse()
    .find((cause) => !isLockError(cause) && !isClientInternal(cause));
}

/** What the user ran, and where: for messages about the backend. */
export interface FailureContext {
  /** The command that failed: `run`, `status`, `list`, `release`, `demo`. */
  readonly command: string | undefined;
  /** The backend's URL, redacted; undefined before one was chosen. */
  readonly backend: string | undefined;
}

function isBackendFailure(error: unknown): boolean {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (isLockError(current) && current.code === 'BACKEND') return true;
    if (current instanceof LockDirectoryError) return true;
  }
  return false;
}

/**
 * The one line printed for an error that ended a command. A backend that cannot be used is
 * reported as such — the command the user ran, the backend, the root cause — never with the
 * internal step that failed or a client library's wording.
 */
export function describeFailure(error: unknown, context: FailureContext): string {
  const command = context.command === undefined ? '' : `${context.command}: `;
  if (error instanceof MissingClientLibraryError) {
    return redactSecrets(
      `${command}${error.scheme}:// URLs need the "${error.packageName}" package, which is not ` +
        `installed: npm i ${error.packageName}`,
    );
  }
  if (exitCodeFor(error) !== ExitCode.UNAVAILABLE || context.backend === undefined) {
    return describeError(error);
  }
  const root = rootCause(error);
  const what = isBackendFailure(error)
    ? `the backend ${context.backend} failed`
    : `cannot reach the backend ${context.backend}`;
  return redactSecrets(`${command}${what}${root === undefined ? '' : `: ${describeRoot(root)}`}`);
}

function describeRoot(error: Error): string {
  const code = (error as { code?: unknown }).code;
  const message = error.message.replace(/\s*\n\s*/g, ' ');
  if (message === '') return typeof code === 'string' ? code : error.name;
  return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
}
