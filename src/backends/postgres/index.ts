/**
 * `distlock/postgres`: locks in PostgreSQL over `pg`. A lease table (one row per key held or
 * awaited), one call per operation (one statement, one round trip) timed by the database's clock,
 * fences from a sequence, a FIFO queue of waiters handed the key by the release that frees it and
 * woken by `NOTIFY` through one `LISTEN` connection per backend; read-write locks and semaphores.
 *
 * Two modes:
 * - `lease` (default): a holding ends when its TTL runs out unless renewed (or on release). Its
 *   holder's connections are pooled: nothing ties the lock to one of them.
 * - `session`: each holding is also tied to a connection of its own from the pool, which holds a
 *   PostgreSQL advisory lock (`pg_advisory_lock`) for it; when that connection ends (the process
 *   died, the server terminated it), the key is free at once and the holder's `lease.signal`
 *   fires at once. What it cannot give: a lock that outlives its connection (a network blip that
 *   drops it loses the lock); no TTL-free holding either (the lease's TTL still applies, renew it or
 *   use `withLock`); each holding, and each queued waiter, occupies one pool connection (size the
 *   pool for them); a waiter handed the key spends one more round trip tying it to its connection;
 *   no interoperation with other programs' `pg_advisory_lock` on the lock's name (the advisory lock
 *   is a beacon of the holding, numbered by its fence, not the lock itself). Fences come from the
 *   lease table, as in lease mode.
 *
 * The table holds rows only for keys in use: rows idle for `idleKeyTtlMs` are swept. Each
 * operation's statement runs in READ COMMITTED (PostgreSQL's default; a pool set to another
 * isolation level gets retryable serialization failures under contention).
 *
 * Requires the optional peer dependency `pg`, PostgreSQL 12 or later, and (unless `autoMigrate` is
 * off and you ran {@link migrate}) the right to create a table, a sequence, two types and two
 * functions in the schema on first use.
 *
 * Fenced writes: keep the lease's fence in the rows the lock protects, and make every write
 * conditional on it (see {@link fencedUpdate}): a holder whose lease expired while it was paused
 * then changes no row once a newer holder has written.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createLocks } from 'distlock';
 * import { postgresBackend, fencedUpdate } from 'distlock/postgres';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const locks = createLocks({ backend: postgresBackend({ pool }), ttlMs: 10_000 });
 * await locks.withLock('account:42', async (lease) => {
 *   const { updated } = await fencedUpdate(pool, {
 *     table: 'accounts', set: { balance: 100 }, where: { id: 42 }, fence: lease.fence,
 *   });
 *   if (!updated) throw new Error('a newer holder has written this account');
 * });
 * // Or let the backend own its pool (ended by `locks.close()`):
 * const own = postgresBackend({ url: 'postgres://app@db.internal:5432/app' });
 * ```
 */
import pg from 'pg';
import { PostgresBackend } from './backend.js';
import { runMigration } from './calls.js';
import { toLockError } from './errors.js';
import { resolveOptions, type PostgresBackendOptions } from './options.js';
import { schemaObjects } from './schema.js';

export { PostgresBackend } from './backend.js';
export { LeaseTableError, type LeaseTableProblem } from './errors.js';
export {
  fencedUpdate,
  fencedUpdateSql,
  type FencedUpdateOptions,
  type FencedUpdateResult,
} from './fenced-update.js';
export {
  POSTGRES_DEFAULTS,
  POSTGRES_POOL_DEFAULTS,
  type PostgresBackendOptions,
  type PostgresLockMode,
} from './options.js';
export { migrationSql } from './schema.js';

/**
 * A lock backend over PostgreSQL. Pass your `pg.Pool` (it stays open) or a `url` (the backend
 * builds its own pool and ends it on `close()`).
 * @throws InvalidArgumentError for a bad option, e.g. a malformed `url`.
 * @example
 * ```ts
 * const backend = postgresBackend({ url: 'postgres://app@127.0.0.1:5432/app', mode: 'session' });
 * ```
 */
export function postgresBackend(options: PostgresBackendOptions): PostgresBackend {
  return new PostgresBackend(options);
}

/**
 * Create the lease table, its sequence, types and function if missing (idempotent, in one
 * transaction), for deployments that run DDL ahead of time and set `autoMigrate: false`.
 * @throws LeaseTableError when this role may not create them; BackendUnavailableError when the
 *   server cannot be reached.
 * @example
 * ```ts
 * await migrate(pool, { schema: 'locks' });
 * ```
 */
export async function migrate(
  pool: pg.Pool,
  names: { readonly schema?: string; readonly table?: string } = {},
): Promise<void> {
  const { schema, table, secrets } = resolveOptions({ ...names, pool });
  try {
    await runMigration(pool, { schema, table });
  } catch (error) {
    throw toLockError(error, 'migrate', schemaObjects({ schema, table }).table, secrets);
  }
}
