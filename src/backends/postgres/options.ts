/**
 * Options of the PostgreSQL backend: defaults in one frozen object, validated eagerly, and the
 * pool built from a `postgres://` URL when the user does not pass one.
 */
import pg from 'pg';
import { InvalidArgumentError } from '../../core/errors.js';
import { validateTimeout } from '../../core/options.js';
import { secretsOf } from '../../core/redact.js';

/**
 * How a holding ends besides its TTL:
 * - `lease` (default): only by its TTL (or a release); the holder's connections are pooled and
 *   shared, and a holder that dies keeps the key until its TTL ends;
 * - `session`: also as soon as the holder's connection to PostgreSQL ends (see the module docs).
 */
export type PostgresLockMode = 'lease' | 'session';

/** Options of {@link postgresBackend}: pass exactly one of `pool` or `url`. */
export interface PostgresBackendOptions {
  /** Your `pg.Pool`. It stays open when the backend closes. @default none: `url` instead */
  readonly pool?: pg.Pool;
  /**
   * A `postgres://` or `postgresql://` URL; the backend builds its own pool (failing fast while
   * the server is unreachable, see {@link POSTGRES_POOL_DEFAULTS}) and ends it on `close()`.
   * @default none: `pool` instead
   */
  readonly url?: string;
  /** Extra `pg.Pool` options for the pool built from `url`. @default none */
  readonly poolOptions?: pg.PoolConfig;
  /** Schema of the lease table (quoted: any name works). @default 'public' */
  readonly schema?: string;
  /**
   * Name of the lease table (quoted). Its sequence, types and function take it as a prefix
   * (`<table>_fence`, `<table>_call`, …), and grants are notified on the channel of that name.
   * @default 'distlock_leases'
   */
  readonly table?: string;
  /**
   * Create the lease table, its sequence, types and function on first use if they are missing
   * (`CREATE … IF NOT EXISTS`, in one transaction). With `false` the backend never runs DDL: run
   * {@link migrate} (or its SQL, {@link migrationSql}) yourself, and a missing table is reported
   * as `LeaseTableError` with `problem: 'missing'`.
   * @default true
   */
  readonly autoMigrate?: boolean;
  /** `lease` or `session`, see {@link PostgresLockMode}. @default 'lease' */
  readonly mode?: PostgresLockMode;
  /**
   * How long a queued waiter's entry lives without a heartbeat. Waiters heartbeat every third of
   * it; a waiter that died stops doing so and is skipped after at most this long.
   * @default 3_000
   */
  readonly queueEntryTtlMs?: number;
  /**
   * Polling period (jittered) of a waiter while the backend's `LISTEN` connection is down and so
   * no grant notification can reach it.
   * @default 100
   */
  readonly pollIntervalMs?: number;
  /**
   * Rows of keys that nobody has held or awaited for this long are deleted, so that the table
   * holds only keys in use (fences need no row: they come from one sequence). Each backend sweeps
   * at most once per this period, in the background, after an acquire.
   * @default 60_000
   */
  readonly idleKeyTtlMs?: number;
  /**
   * Pool built from `url`: how long connecting may take before the call fails with a retryable
   * `BackendUnavailableError`. A refused connection fails at once whatever this is; this bounds a
   * server that does not answer. Longer than Redis's: PostgreSQL forks a process and authenticates
   * (SCRAM) for each new connection, which takes seconds on a loaded host.
   * @default 5_000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Pool built from `url`: the server's `statement_timeout` for the backend's statements (a lock
   * operation takes well under a millisecond; this bounds one stuck behind a lock or a hung server).
   * @default 5_000
   */
  readonly statementTimeoutMs?: number;
}

/** Every default of {@link PostgresBackendOptions}. */
export const POSTGRES_DEFAULTS = Object.freeze({
  schema: 'public',
  table: 'distlock_leases',
  autoMigrate: true,
  mode: 'lease' as PostgresLockMode,
  queueEntryTtlMs: 3_000,
  pollIntervalMs: 100,
  idleKeyTtlMs: 60_000,
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 5_000,
});

/**
 * `pg.Pool` options of a pool built from a URL: a connection that cannot be made fails the call
 * rather than queueing it (a lease's clock runs while it waits), idle connections do not keep the
 * process alive, and no statement runs forever.
 */
export const POSTGRES_POOL_DEFAULTS = Object.freeze({
  max: 10,
  idleTimeoutMillis: 10_000,
  allowExitOnIdle: true,
} satisfies pg.PoolConfig);

/** Validated options: every field present. */
export interface ResolvedPostgresOptions {
  readonly pool: pg.Pool;
  readonly ownsPool: boolean;
  /** Passwords to scrub from error messages, if known. */
  readonly secrets: readonly string[];
  readonly schema: string;
  readonly table: string;
  readonly autoMigrate: boolean;
  readonly mode: PostgresLockMode;
  readonly queueEntryTtlMs: number;
  readonly pollIntervalMs: number;
  readonly idleKeyTtlMs: number;
}

/** Longest table name: the derived names (`<table>_holder`, …) must fit PostgreSQL's 63 bytes. */
const MAX_TABLE_BYTES = 48;

function identifier(option: string, value: unknown, maxBytes: number): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.includes('\0') ||
    Buffer.byteLength(value) > maxBytes
  ) {
    throw new InvalidArgumentError(
      option,
      `must be a non-empty name of at most ${maxBytes} bytes without NUL`,
    );
  }
  return value;
}

function isPool(value: unknown): value is pg.Pool {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as pg.Pool).connect === 'function' &&
    typeof (value as pg.Pool).query === 'function' &&
    typeof (value as pg.Pool).end === 'function'
  );
}

/** True for a `postgres://` or `postgresql://` URL with a host. Never echoes the URL. */
function checkUrl(url: unknown): string {
  const invalid = () =>
    new InvalidArgumentError('url', 'must be a postgres:// or postgresql:// URL with a host');
  if (typeof url !== 'string') throw invalid();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid();
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw invalid();
  if (parsed.hostname === '') throw invalid();
  return url;
}

function poolFromUrl(
  url: string,
  options: PostgresBackendOptions,
  connectTimeoutMs: number,
  statementTimeoutMs: number,
): pg.Pool {
  const pool = new pg.Pool({
    ...POSTGRES_POOL_DEFAULTS,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    ...options.poolOptions,
    connectionString: url,
  });
  // An idle connection's failure surfaces as the next operation's typed error; without a listener
  // pg would crash the process with it.
  pool.on('error', () => undefined);
  return pool;
}

/** The passwords a pool may put in an error: from the URL and from the pool's own options. */
function secretsOfPool(pool: pg.Pool, url: string | undefined): string[] {
  const found = url !== undefined ? secretsOf(url) : [];
  const password = (pool as { options?: { password?: unknown } }).options?.password;
  if (typeof password === 'string' && password !== '') found.push(password);
  return found;
}

export function resolveOptions(options: PostgresBackendOptions): ResolvedPostgresOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object with `pool` or `url`');
  }
  const schema = identifier('schema', options.schema ?? POSTGRES_DEFAULTS.schema, 63);
  const table = identifier('table', options.table ?? POSTGRES_DEFAULTS.table, MAX_TABLE_BYTES);
  const autoMigrate = options.autoMigrate ?? POSTGRES_DEFAULTS.autoMigrate;
  if (typeof autoMigrate !== 'boolean') {
    throw new InvalidArgumentError('autoMigrate', 'must be a boolean');
  }
  const mode = options.mode ?? POSTGRES_DEFAULTS.mode;
  if (mode !== 'lease' && mode !== 'session') {
    throw new InvalidArgumentError('mode', "must be 'lease' or 'session'");
  }
  /** A duration option: a positive integer of milliseconds, or its default. */
  const duration = (
    option:
      | 'queueEntryTtlMs'
      | 'pollIntervalMs'
      | 'idleKeyTtlMs'
      | 'connectTimeoutMs'
      | 'statementTimeoutMs',
  ) => validateTimeout(options[option] ?? POSTGRES_DEFAULTS[option], option);
  const queueEntryTtlMs = duration('queueEntryTtlMs');
  if (queueEntryTtlMs < 30) throw new InvalidArgumentError('queueEntryTtlMs', 'must be >= 30');
  const pollIntervalMs = duration('pollIntervalMs');
  const idleKeyTtlMs = duration('idleKeyTtlMs');
  const connectTimeoutMs = duration('connectTimeoutMs');
  const statementTimeoutMs = duration('statementTimeoutMs');
  if ((options.pool === undefined) === (options.url === undefined)) {
    throw new InvalidArgumentError('pool', 'pass exactly one of `pool` or `url`');
  }
  if (options.pool !== undefined && !isPool(options.pool)) {
    throw new InvalidArgumentError('pool', 'must be a pg.Pool');
  }
  const url = options.url === undefined ? undefined : checkUrl(options.url);
  const pool =
    options.pool ?? poolFromUrl(url as string, options, connectTimeoutMs, statementTimeoutMs);
  return {
    pool,
    ownsPool: options.pool === undefined,
    secrets: secretsOfPool(pool, url),
    schema,
    table,
    autoMigrate,
    mode,
    queueEntryTtlMs,
    pollIntervalMs,
    idleKeyTtlMs,
  };
}
