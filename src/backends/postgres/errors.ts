/**
 * Maps `pg` failures onto distlock's typed errors: a server that cannot be reached, is starting,
 * shutting down or overloaded is a retryable `BackendUnavailableError`; a lease table that is
 * missing or that this role may not write is a {@link LeaseTableError}; anything else PostgreSQL
 * answered is a `BackendError`. Passwords are scrubbed from every message.
 */
import { BackendError, BackendUnavailableError, LockError } from '../../core/errors.js';
import { redactSecrets, safeCause } from '../../core/redact.js';

/** What is wrong with the lease table. */
export type LeaseTableProblem = 'missing' | 'read-only';

/**
 * The lease table (or its function) does not exist and may not be created here (`missing`), or
 * this role or server may not write it (`read-only`: no `UPDATE` privilege, a read-only
 * transaction, a hot standby). Not retryable: an operator has to act (run `migrate()`, grant
 * privileges, point at the primary).
 */
export class LeaseTableError extends BackendError {
  /** What is wrong. */
  readonly problem: LeaseTableProblem;
  /** The table, schema-qualified and quoted. */
  readonly table: string;

  constructor(problem: LeaseTableProblem, table: string, detail: string, cause: unknown) {
    super(
      problem === 'missing'
        ? `the lease table ${table} is missing (${detail}); run migrate() or enable autoMigrate`
        : `the lease table ${table} is read-only for this connection (${detail})`,
      { cause },
    );
    this.problem = problem;
    this.table = table;
  }
}

/** SQLSTATE classes and codes that mean "try again later" rather than "your request is wrong". */
const TRANSIENT_CLASSES = ['08', '53', '57', '58'];
const TRANSIENT_CODES = new Set(['40001', '40P01', '55P03', '55006']);
/** The object is missing: undefined table, function, schema or type. */
const MISSING_CODES = new Set(['42P01', '42883', '3F000', '42704']);
/** Writing is not allowed: insufficient privilege, read-only transaction. */
const READ_ONLY_CODES = new Set(['42501', '25006']);

/** The SQLSTATE of a PostgreSQL error (`pg` puts it in `code`, five characters). */
function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** True when PostgreSQL answered with an error (rather than the connection failing). */
function isServerError(error: unknown): boolean {
  return typeof (error as { severity?: unknown } | null)?.severity === 'string';
}

/**
 * The typed error for a failed call made for `operation` (e.g. `acquire`) on `table`. `secrets`
 * (passwords) are replaced by `***` in the message; the cause is sanitized by `LockError` itself.
 */
export function toLockError(
  error: unknown,
  operation: string,
  table: string,
  secrets: readonly string[],
): LockError {
  if (error instanceof LockError) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = redactSecrets(raw, secrets);
  const cause = safeCause(error, secrets);
  const state = sqlState(error);
  if (state !== undefined && MISSING_CODES.has(state)) {
    return new LeaseTableError('missing', table, message, cause);
  }
  if (state !== undefined && READ_ONLY_CODES.has(state)) {
    return new LeaseTableError('read-only', table, message, cause);
  }
  const transient =
    !isServerError(error) ||
    (state !== undefined &&
      (TRANSIENT_CLASSES.includes(state.slice(0, 2)) || TRANSIENT_CODES.has(state)));
  const text = `postgres ${operation} failed: ${message}`;
  return transient
    ? new BackendUnavailableError(text, { cause })
    : new BackendError(text, { cause });
}
