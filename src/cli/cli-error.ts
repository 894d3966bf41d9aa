/**
 * Turning any error into one redacted line and an exit code. Expected failures (bad usage, lock
 * not acquired, backend down) are one line without a stack; only unexpected ones get more detail,
 * and only when `DISTLOCK_DEBUG=1`.
 */
import { redactSecrets } from '../backend-url.js';
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
