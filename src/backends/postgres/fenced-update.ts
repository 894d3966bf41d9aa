/**
 * Fenced writes in SQL: the protected rows keep the fence of the last lease that wrote them, and
 * every write is conditional on it, in the same `UPDATE`:
 *
 * ```sql
 * UPDATE accounts SET balance = $1, fence = $2 WHERE id = $3 AND fence <= $2
 * ```
 *
 * A holder whose lease expired while it was paused (a GC pause, a stopped VM) and who writes after
 * a newer holder has written carries a lower fence than the row: its `UPDATE` changes no row. A
 * newer holder's first statement on the row (a write, or a read through `fencedUpdate` with no
 * `set`) raises the row's fence, so from then on the stale holder can neither write nor read it.
 * The check and the write are one statement, so no other statement comes between them.
 */
import type pg from 'pg';
import { InvalidArgumentError } from '../../core/errors.js';
import { quoteIdent } from './schema.js';

/** Options of {@link fencedUpdate}. */
export interface FencedUpdateOptions {
  /** The table, e.g. `accounts` or `billing.accounts` (each part is quoted). */
  readonly table: string;
  /** Columns to set (`{}` or absent: only claim the row for this fence, e.g. before reading it). */
  readonly set?: Readonly<Record<string, unknown>>;
  /** Equality conditions that pick the row(s), e.g. `{ id: 42 }`. At least one. */
  readonly where: Readonly<Record<string, unknown>>;
  /** The lease's fence (`lease.fence`). */
  readonly fence: bigint;
  /** The column that keeps the fence of the last writer (a `bigint`, initially 0). @default 'fence' */
  readonly fenceColumn?: string;
  /** Columns to return from the updated rows. @default none */
  readonly returning?: readonly string[];
}

/** What {@link fencedUpdate} did. */
export interface FencedUpdateResult<R> {
  /** False when no row changed: a newer fence has written it, or `where` matched nothing. */
  readonly updated: boolean;
  readonly rowCount: number;
  /** The `returning` columns of the updated rows. */
  readonly rows: R[];
}

/**
 * Run `UPDATE <table> SET <set>, <fenceColumn> = $fence WHERE <where> AND <fenceColumn> <= $fence`:
 * the write happens only if no newer lease has written the row. Column and table names are
 * quoted; values are parameters.
 *
 * @example
 * ```ts
 * await locks.withLock(`account:${id}`, async (lease) => {
 *   const [account] = (await fencedUpdate(pool, {
 *     table: 'accounts', where: { id }, fence: lease.fence, returning: ['balance'],
 *   })).rows;                                  // a fenced read: claims the row for this lease
 *   const { updated } = await fencedUpdate(pool, {
 *     table: 'accounts', set: { balance: account.balance - 10 }, where: { id }, fence: lease.fence,
 *   });
 *   if (!updated) throw new Error('lost the account to a newer lock holder');
 * });
 * ```
 * @throws InvalidArgumentError for a missing `table`, `where` or `fence`; the driver's error if
 *   the statement fails.
 */
export async function fencedUpdate<R extends pg.QueryResultRow = pg.QueryResultRow>(
  db: Pick<pg.Pool | pg.PoolClient | pg.Client, 'query'>,
  options: FencedUpdateOptions,
): Promise<FencedUpdateResult<R>> {
  const statement = fencedUpdateSql(options);
  const result = await db.query<R>(statement.text, statement.values);
  const rowCount = result.rowCount ?? 0;
  return { updated: rowCount > 0, rowCount, rows: result.rows };
}

/** The statement {@link fencedUpdate} runs, for callers with their own query layer. */
export function fencedUpdateSql(options: FencedUpdateOptions): { text: string; values: unknown[] } {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object');
  }
  const { table, set = {}, where, fence, fenceColumn = 'fence', returning = [] } = options;
  if (typeof table !== 'string' || table === '') {
    throw new InvalidArgumentError('table', 'must be a table name');
  }
  if (typeof fence !== 'bigint') throw new InvalidArgumentError('fence', 'must be a bigint');
  if (typeof where !== 'object' || where === null || Object.keys(where).length === 0) {
    throw new InvalidArgumentError('where', 'must name at least one column');
  }
  const values: unknown[] = [fence.toString()];
  const param = (value: unknown) => `$${values.push(value)}`;
  const fenceRef = quoteIdent(fenceColumn);
  const assignments = Object.entries(set)
    .filter(([column]) => column !== fenceColumn)
    .map(([column, value]) => `${quoteIdent(column)} = ${param(value)}`);
  assignments.push(`${fenceRef} = $1`);
  const conditions = Object.entries(where).map(
    ([column, value]) => `${quoteIdent(column)} = ${param(value)}`,
  );
  conditions.push(`${fenceRef} <= $1`);
  const tableRef = table.split('.').map(quoteIdent).join('.');
  const tail = returning.length > 0 ? ` RETURNING ${returning.map(quoteIdent).join(', ')}` : '';
  return {
    text: `UPDATE ${tableRef} SET ${assignments.join(', ')} WHERE ${conditions.join(' AND ')}${tail}`,
    values,
  };
}
