/**
 * The PostgreSQL guard: a row of your own table, every access to which is one statement that checks
 * the caller's fence in its `WHERE` clause and records it in its `SET` clause. PostgreSQL
 * re-evaluates the `WHERE` of an `UPDATE` once it holds the row's lock, so two accesses never both
 * pass against the same fences, at any isolation level.
 *
 * The row needs a `bigint` column for the highest exclusive fence (`fence` by default, `NULL` or
 * `0` at first) and, to serve readers of read-write locks fully, one for the highest shared fence
 * (`sharedFenceColumn`). Without it, a reader is still refused once a newer writer came in, but a
 * reader's access is not recorded, so a stale writer is not refused after a newer reader's read.
 *
 * `pg` is an optional peer dependency: pass your `Pool` or `Client` (anything with `query(text,
 * values)`); this module does not import it.
 */
import { BackendError, BackendUnavailableError, InvalidArgumentError } from '../core/errors.js';
import { accessOf, outranking, type Access, type FenceHolder, type FenceState } from './rules.js';
import { StaleFenceError } from './stale-fence-error.js';

/** A row as `pg` returns it. */
export type Row = Record<string, unknown>;

/** The part of a `pg` `Pool`, `PoolClient` or `Client` the guard uses. */
export interface PostgresQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
}

/** Options of {@link postgresFence}. */
export interface PostgresFenceOptions {
  /** The table that holds the row. */
  readonly table: string;
  /** Its schema. @default the connection's `search_path` */
  readonly schema?: string;
  /** Identifies the row: column → value, compared with `=` (e.g. `{ id: 42 }`). */
  readonly where: Readonly<Record<string, unknown>>;
  /** The `bigint` column holding the highest exclusive fence. @default 'fence' */
  readonly fenceColumn?: string;
  /**
   * The `bigint` column holding the highest shared (reader, permit) fence, if the table has one.
   * @default none (see the module doc for what readers then lose)
   */
  readonly sharedFenceColumn?: string;
}

/** A row that refuses stale holders. Made by {@link postgresFence}. */
export interface PostgresFencedRow {
  /**
   * Check `holder`'s fence, record it, and return the row (`null` if there is none) — one
   * `UPDATE … RETURNING *`.
   * @throws StaleFenceError if a newer holder has accessed the row (nothing recorded).
   */
  read(holder: FenceHolder): Promise<Row | null>;
  /**
   * Check `holder`'s fence, record it, and set `values` (column → value) — one `UPDATE`.
   * @throws StaleFenceError if a newer holder has accessed the row (nothing written);
   *   BackendError if no row matches `where`.
   */
  write(values: Readonly<Record<string, unknown>>, holder: FenceHolder): Promise<void>;
  /**
   * Check and record `holder`'s fence without reading or writing anything else.
   * @throws StaleFenceError if a newer holder has accessed the row; BackendError if there is none.
   */
  register(holder: FenceHolder): Promise<void>;
  /** The highest fences the row has seen (no check); `null` fences if there is no row. */
  fences(): Promise<FenceState>;
}

/**
 * Guard one row of your table with fences.
 *
 * @example
 * ```ts
 * // CREATE TABLE accounts (id int PRIMARY KEY, balance int, fence bigint);
 * const account = postgresFence(pool, { table: 'accounts', where: { id: 42 } });
 * await locks.withLock('account:42', async (lease) => {
 *   const row = await account.read(lease); // registers lease.fence
 *   await account.write({ balance: Number(row?.balance) + 10 }, lease);
 * });
 * ```
 */
export function postgresFence(
  client: PostgresQueryable,
  options: PostgresFenceOptions,
): PostgresFencedRow {
  if (typeof client?.query !== 'function') {
    throw new InvalidArgumentError('client', 'must be a pg Pool or Client');
  }
  const table =
    (options.schema === undefined ? '' : `${ident(options.schema, 'schema')}.`) +
    ident(options.table, 'table');
  const fenceColumn = ident(options.fenceColumn ?? 'fence', 'fenceColumn');
  const sharedColumn =
    options.sharedFenceColumn === undefined
      ? undefined
      : ident(options.sharedFenceColumn, 'sharedFenceColumn');
  const whereEntries = Object.entries(options.where ?? {});
  if (whereEntries.length === 0) {
    throw new InvalidArgumentError('where', 'must name at least one column of the row');
  }
  const resource = `${table} where ${whereEntries.map(([c]) => c).join(', ')}`;
  /** `column = $n AND …` for the row's identifying values, numbered from `$first`. */
  const whereSql = (first: number) =>
    whereEntries.map(([column], i) => `${ident(column, 'where')} = $${first + i}`);
  const whereValues = whereEntries.map(([, value]) => value);

  const query = async (text: string, values: unknown[]): Promise<Row[]> => {
    try {
      return (await client.query(text, values)).rows;
    } catch (error) {
      // Class 08 (connection exception), 57P0x (shutdown), 40001/40P01 (retry) are transient.
      const code = String((error as { code?: unknown })?.code ?? '');
      const transient = code === '' || /^(08|57P0|40001|40P01)/.test(code);
      const message = `postgres fence on ${table} failed${code ? ` (${code})` : ''}`;
      throw transient
        ? new BackendUnavailableError(message, { cause: error })
        : new BackendError(message, { cause: error });
    }
  };

  const fences = async (): Promise<FenceState | null> => {
    const columns = sharedColumn ? `${fenceColumn}, ${sharedColumn}` : fenceColumn;
    const rows = await query(
      `SELECT ${columns} FROM ${table} WHERE ${whereSql(1).join(' AND ')}`,
      whereValues,
    );
    const row = rows[0];
    if (row === undefined) return null;
    return {
      fence: toFence(row[unquote(fenceColumn)]),
      sharedFence: sharedColumn ? toFence(row[unquote(sharedColumn)]) : null,
    };
  };

  /** One guarded statement; `set` adds the caller's columns. Returns the row, `null` if none. */
  const access = async (
    holder: FenceHolder,
    set: Readonly<Record<string, unknown>>,
    kind: 'read' | 'write' | 'register',
  ): Promise<Row | null> => {
    const checked = accessOf(holder);
    const setEntries = Object.entries(set);
    const assignments = setEntries.map(
      ([column], i) => `${ident(column, 'values')} = $${i + 2 + whereEntries.length}`,
    );
    const { record, checks } = fenceClauses(checked, fenceColumn, sharedColumn);
    const sets = [...record, ...assignments];
    // $1 is the fence; the row's identifying values follow, then the values to set.
    const conditions = [...whereSql(2), ...checks].join(' AND ');
    const text =
      sets.length > 0
        ? `UPDATE ${table} SET ${sets.join(', ')} WHERE ${conditions} RETURNING *`
        : `SELECT * FROM ${table} WHERE ${conditions}`;
    const values = [String(checked.fence), ...whereValues, ...setEntries.map(([, v]) => v)];
    const rows = await query(text, values);
    if (rows[0] !== undefined) return rows[0];
    // Nothing matched: no such row, or a newer holder's fence refused this one.
    const state = await fences();
    if (state === null) {
      if (kind === 'read') return null;
      throw new BackendError(`postgres fence: no row of ${resource} to ${kind}`);
    }
    const higher = outranking(state, checked);
    // Fences only grow, so a refusal outlives the statement; if none shows, the row was replaced.
    throw new StaleFenceError(resource, checked.fence, higher ?? checked.fence);
  };

  return {
    read: (holder) => access(holder, {}, 'read'),
    write: async (values, holder) => {
      if (typeof values !== 'object' || values === null || Object.keys(values).length === 0) {
        throw new InvalidArgumentError('values', 'must set at least one column');
      }
      await access(holder, values, 'write');
    },
    register: async (holder) => {
      await access(holder, {}, 'register');
    },
    fences: async () => (await fences()) ?? { fence: null, sharedFence: null },
  };
}

/**
 * The SQL that records and checks one access (`rules.ts`, with `$1` the fence): an exclusive
 * access passes below neither number and sets the exclusive one; a shared access passes below no
 * exclusive fence and raises the shared one (when the table keeps it).
 */
function fenceClauses(
  access: Access,
  fenceColumn: string,
  sharedColumn: string | undefined,
): { record: string[]; checks: string[] } {
  const notBelow = (column: string) => `(${column} IS NULL OR ${column} <= $1::bigint)`;
  if (!access.shared) {
    return {
      record: [`${fenceColumn} = $1::bigint`],
      checks: [notBelow(fenceColumn), ...(sharedColumn ? [notBelow(sharedColumn)] : [])],
    };
  }
  return {
    record: sharedColumn ? [`${sharedColumn} = GREATEST(${sharedColumn}, $1::bigint)`] : [],
    checks: [notBelow(fenceColumn)],
  };
}

/** A quoted SQL identifier. */
function ident(name: unknown, option: string): string {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new InvalidArgumentError(option, 'must be a non-empty SQL identifier');
  }
  return `"${name.replace(/"/g, '""')}"`;
}

function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/""/g, '"');
}

function toFence(value: unknown): bigint | null {
  return value === null || value === undefined ? null : BigInt(value as string | number);
}
