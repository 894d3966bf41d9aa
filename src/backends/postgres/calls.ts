/**
 * Running the lease table's call function: one prepared statement per backend, answered as one
 * row; the schema created on first use (when `autoMigrate` allows it); every failure turned into a
 * typed error.
 */
import type pg from 'pg';
import type { LockMode } from '../../core/backend.js';
import { LeaseTableError, toLockError } from './errors.js';
import {
  fastAcquireSql,
  fastReleaseSql,
  migrationSql,
  schemaObjects,
  sweepSql,
  type SchemaObjects,
  type TableNames,
} from './schema.js';

/** The operations of the call function (see schema.ts for their answers). */
export type CallOperation = 'acquire' | 'poll' | 'claim' | 'extend' | 'release' | 'leave' | 'force';

/** One call's arguments beyond the operation and key; absent ones are sent as neutral values. */
export interface CallArguments {
  readonly token?: string;
  readonly ttlMs?: number;
  readonly mode?: LockMode;
  /** Shared limit; `Infinity` (readers) is sent as 0. */
  readonly limit?: number;
  /** Queue-entry TTL: 0 (absent) does not queue. */
  readonly queueMs?: number;
  /** Tie a direct grant to the connection (session mode), or give that tie back (release). */
  readonly session?: boolean;
  /**
   * `acquire` and `release` on the pool: try the one-statement fast path first (see schema.ts).
   * Worth it on a key that is usually free; on a contended key it only adds work, so callers pass
   * false for keys that were contended last time.
   */
  readonly fast?: boolean;
}

/** The call function's answer, with the local time the call was sent. */
export interface CallReply {
  readonly code: number;
  readonly fence: string | null;
  /** Expiry (epoch ms, database clock) of a grant; ms until the soonest holder expires; a limit. */
  readonly value: number | null;
  /** The database's clock when the call ran (epoch ms). */
  readonly nowMs: number;
  /** Local `Date.now()` before the call was sent. */
  readonly sentAt: number;
}

/** A prepared statement answered as arrays. */
interface StatementConfig {
  readonly name: string;
  readonly text: string;
  readonly rowMode: 'array';
}

/** Something that runs a query: the pool, or one of its clients (a session's connection). */
export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export class CallRunner {
  readonly objects: SchemaObjects;
  readonly #pool: pg.Pool;
  readonly #names: TableNames;
  readonly #autoMigrate: boolean;
  readonly #secrets: readonly string[];
  /** The call function, and the statements that try a fast path first (see schema.ts). */
  readonly #statements: Record<'call' | 'acquire' | 'release', StatementConfig>;
  readonly #sweep: pg.QueryConfig;
  #migrating: Promise<void> | undefined;

  constructor(
    pool: pg.Pool,
    names: TableNames,
    options: { autoMigrate: boolean; secrets: readonly string[] },
  ) {
    this.#pool = pool;
    this.#names = names;
    this.#autoMigrate = options.autoMigrate;
    this.#secrets = options.secrets;
    this.objects = schemaObjects(names);
    const o = this.objects;
    // Prepared once per connection; the name tells tables apart.
    const statement = (kind: string, text: string): StatementConfig => ({
      name: `distlock_${kind}_${o.id}`,
      text,
      rowMode: 'array',
    });
    this.#statements = {
      call: statement('call', `SELECT * FROM ${o.call}($1, $2, $3, $4, $5, $6, $7, $8)`),
      acquire: statement('fast_acquire', fastAcquireSql(o)),
      release: statement('fast_release', fastReleaseSql(o)),
    };
    this.#sweep = { name: `distlock_sweep_${o.id}`, text: sweepSql(o) };
  }

  /** One operation on `key`, through `via` (a session's connection) or the pool. */
  async call(
    operation: CallOperation,
    key: string,
    args: CallArguments,
    via: Queryable = this.#pool,
  ): Promise<CallReply> {
    const values = [
      operation,
      key,
      args.token ?? '',
      args.ttlMs ?? 0,
      args.mode === 'shared' ? 's' : 'x',
      args.limit === undefined || args.limit === Infinity ? 0 : args.limit,
      args.queueMs ?? 0,
      args.session ? 1 : 0,
    ];
    // Lease mode's exclusive acquire and release try their fast path first (same statement).
    const config =
      args.fast && (operation === 'acquire' || operation === 'release') && via === this.#pool
        ? this.#statements[operation]
        : this.#statements.call;
    const sentAt = Date.now();
    const result = await this.#run(operation, () => via.query<unknown[]>({ ...config, values }));
    const row = result.rows[0] as [number, string | null, string | null, string];
    return {
      code: row[0],
      fence: row[1],
      value: row[2] === null ? null : Number(row[2]),
      nowMs: Number(row[3]),
      sentAt,
    };
  }

  /** A read-only query (inspect, list) on the pool, typed errors on failure. */
  async query<R extends pg.QueryResultRow>(
    operation: string,
    config: pg.QueryConfig,
  ): Promise<R[]> {
    return (await this.#run(operation, () => this.#pool.query<R>(config))).rows;
  }

  /** Delete the rows of keys unused for `idleMs` (see `sweepSql`); resolves with how many. */
  async sweep(idleMs: number): Promise<number> {
    const result = await this.#run('sweep', () =>
      this.#pool.query({ ...this.#sweep, values: [idleMs] }),
    );
    return result.rowCount ?? 0;
  }

  /** The typed error for a failure of `operation`. */
  error(error: unknown, operation: string) {
    return toLockError(error, operation, this.objects.table, this.#secrets);
  }

  /**
   * Run `statement`; if the table or its function is missing and `autoMigrate` allows it, create
   * them (once per backend at a time) and run it again. Checking on failure rather than before
   * the first call keeps the usual case, a table that exists, at one round trip.
   */
  async #run<T>(operation: string, statement: () => Promise<T>): Promise<T> {
    try {
      return await statement();
    } catch (error) {
      const typed = this.error(error, operation);
      if (!(this.#autoMigrate && typed instanceof LeaseTableError && typed.problem === 'missing'))
        throw typed;
    }
    await this.#migrate(operation);
    try {
      return await statement();
    } catch (error) {
      throw this.error(error, operation);
    }
  }

  #migrate(operation: string): Promise<void> {
    this.#migrating ??= runMigration(this.#pool, this.#names)
      .catch((error: unknown) => {
        throw this.error(error, operation);
      })
      .finally(() => (this.#migrating = undefined));
    return this.#migrating;
  }
}

/**
 * Run {@link migrationSql} on one connection of `pool`; on failure roll back, so the connection
 * goes back to the pool outside any transaction.
 */
export async function runMigration(pool: pg.Pool, names: TableNames): Promise<void> {
  const client = await pool.connect();
  let broken: unknown;
  try {
    await client.query(migrationSql(names));
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => (broken = rollbackError));
    throw error;
  } finally {
    client.release(broken instanceof Error ? broken : undefined);
  }
}
