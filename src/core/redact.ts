/**
 * Keeping secrets out of everything distlock throws or prints.
 *
 * Client libraries attach whatever they have to their errors: ioredis puts the failed command,
 * arguments included, on a `ReplyError` (an `AUTH user password` among them), and connection
 * errors can carry the options they were made with. Attaching such an error as a `cause` would
 * put the password one `console.error(err)` away from a log. So a backend never attaches a
 * client's error as it is: it attaches {@link safeCause}'s copy, which keeps what helps a reader
 * (class name, message, `code`, `errno`, `syscall`, `address`, `port`, the cause chain) with
 * secrets replaced by `***`, and drops everything else.
 */

/**
 * Replace every secret in `text` with `***`: the password of any `scheme://user:password@host`
 * URL in it, Azure `AccountKey=`/`SharedAccessSignature=` values, `password=`/`sig=`-style query
 * parameters, and each of `secrets` wherever it appears. Safe to apply to whole messages.
 *
 * @example
 * ```ts
 * redactSecrets('cannot reach redis://app:hunter2@db:6379'); // 'cannot reach redis://app:***@db:6379'
 * ```
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let redacted = text
    // The password runs to the last '@' of the token, as URL parsers read it.
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s'"`@/:]*):[^\s'"`]*@/gi, '$1:***@')
    .replace(/((?:^|[;\s'"`])(?:AccountKey|SharedAccessSignature)=)[^;\s'"`]*/gi, '$1***')
    .replace(
      /([?&](?:password|pass|pwd|secret|token|sig|access_key|accountkey)=)[^&#\s'"`]*/gi,
      '$1***',
    );
  // Longest first, so that a secret containing another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) redacted = redacted.split(secret).join('***');
  }
  return redacted;
}

/**
 * The secrets inside a backend URL or Azure connection string (its password, as written and
 * percent-decoded; an `AccountKey`; a SAS signature), so that they can also be scrubbed where
 * they appear without the URL around them.
 */
export function secretsOf(url: string): string[] {
  const found: string[] = [];
  const password = /^[a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:([^\s]*)@/i.exec(url)?.[1];
  if (password) {
    found.push(password);
    try {
      found.push(decodeURIComponent(password));
    } catch {
      // not valid percent-encoding: the raw form is all there is
    }
  }
  for (const match of url.matchAll(
    /(?:AccountKey|SharedAccessSignature|password|sig)=([^;&\s]+)/gi,
  )) {
    if (!match[1]) continue;
    found.push(match[1]);
    try {
      found.push(decodeURIComponent(match[1]));
    } catch {
      // keep the raw form only
    }
  }
  return [...new Set(found)];
}

/** The primitive fields of an error worth keeping: they locate a failure without revealing data. */
const KEPT_FIELDS = ['code', 'errno', 'syscall', 'address', 'port', 'hostname'] as const;

/** Causes followed before the chain is cut (a cycle or a pathological depth). */
const MAX_CAUSE_DEPTH = 8;

/**
 * A client library's error, copied into something safe to attach as a `cause` or to print. See
 * {@link safeCause}.
 */
export class SanitizedError extends Error {
  /** e.g. `ECONNREFUSED`, `ETIMEDOUT`, or a client's own code. */
  declare readonly code?: string | number;
  declare readonly errno?: number;
  declare readonly syscall?: string;
  declare readonly address?: string;
  declare readonly port?: number;
  declare readonly hostname?: string;
  /** The errors of an `AggregateError` (e.g. one per address tried), each sanitized. */
  declare readonly errors?: readonly SanitizedError[];
}

/**
 * A safe copy of `error` (any thrown value): the same `name` and message, the fields that locate
 * a failure (`code`, `errno`, `syscall`, `address`, `port`, `hostname`), an `AggregateError`'s
 * `errors` and the `cause` chain, each copied the same way, with every secret (see
 * {@link redactSecrets}) replaced by `***`. Nothing else of the original survives: no command
 * arguments, no client options, no stack frames with data in them (the stack is the copy's own).
 * Errors distlock made itself (`LockError`s) are returned as they are: they were built safe.
 */
export function safeCause(error: unknown, secrets: readonly string[] = []): Error {
  return sanitize(error, secrets, 0);
}

function sanitize(error: unknown, secrets: readonly string[], depth: number): Error {
  if (error instanceof SanitizedError) return error;
  if (isOwnSafeError(error)) return error;
  const source = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  const message =
    error instanceof Error ? error.message : typeof error === 'string' ? error : String(error);
  const cause =
    depth < MAX_CAUSE_DEPTH && source.cause !== undefined
      ? sanitize(source.cause, secrets, depth + 1)
      : undefined;
  const copy = new SanitizedError(
    redactSecrets(message, secrets),
    cause === undefined ? undefined : { cause },
  );
  const name = error instanceof Error ? error.name : 'Error';
  Object.defineProperty(copy, 'name', { value: redactSecrets(name, secrets), enumerable: false });
  for (const field of KEPT_FIELDS) {
    const value = source[field];
    if (typeof value === 'string') {
      Object.defineProperty(copy, field, {
        value: redactSecrets(value, secrets),
        enumerable: true,
      });
    } else if (typeof value === 'number') {
      Object.defineProperty(copy, field, { value, enumerable: true });
    }
  }
  if (Array.isArray(source.errors) && depth < MAX_CAUSE_DEPTH) {
    const errors = source.errors.slice(0, 16).map((e) => sanitize(e, secrets, depth + 1));
    Object.defineProperty(copy, 'errors', { value: errors, enumerable: true });
  }
  return copy;
}

/**
 * Errors from `./errors.ts` carry only what distlock put in them. Checked by shape (a `code`
 * among distlock's and a `retryable` flag) rather than `instanceof`, so that this module imports
 * nothing and two copies of the package still recognise each other's errors.
 */
function isOwnSafeError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const { code, retryable } = error as { code?: unknown; retryable?: unknown };
  return typeof retryable === 'boolean' && typeof code === 'string' && OWN_CODES.has(code);
}

const OWN_CODES = new Set([
  'INVALID_ARGUMENT',
  'TIMEOUT',
  'LOCK_LOST',
  'UNAVAILABLE',
  'BACKEND',
  'UNSUPPORTED',
  'LIMIT_MISMATCH',
  'CLOSED',
]);

/**
 * The innermost cause of `error` (following `cause` links), for a one-line "because …" in a
 * message: `connect ECONNREFUSED 127.0.0.1:1` rather than a client's retry bookkeeping.
 */
export function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH; depth += 1) {
    const next = (current as { cause?: unknown } | null | undefined)?.cause;
    if (next === undefined || next === null) return current;
    current = next;
  }
  return current;
}
