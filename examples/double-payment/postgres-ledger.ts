/**
 * The accounts in a PostgreSQL table, one row per account: its JSON and the fence of the last
 * lease that used it. Every fenced read and write is one `UPDATE … WHERE fence <= $fence`
 * (`fencedUpdate` from `distlock/postgres`): a stale holder's statement changes no row, so its
 * write cannot undo the work of the lock's next holder, whatever pause it woke up from.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { fencedUpdate } from '../../src/backends/postgres/index.js';
import type { Ledger } from './ledger.js';
import type { Account } from './model.js';
import { StaleFenceError, type StoreAccessOptions } from './store.js';

/** The highest fence seen before any lease used an account. */
const NO_FENCE = -1n;

export class PostgresLedger implements Ledger {
  readonly #url: string;
  readonly #table: string;
  readonly #pool: pg.Pool;

  constructor(url: string, table: string) {
    this.#url = url;
    this.#table = table;
    this.#pool = new pg.Pool({ connectionString: url, max: 4, allowExitOnIdle: true });
    this.#pool.on('error', () => undefined);
  }

  /** Create the table `table` (replacing one of that name) holding `accounts`. */
  static async create(
    url: string,
    table: string,
    accounts: readonly Account[],
  ): Promise<PostgresLedger> {
    const ledger = new PostgresLedger(url, table);
    const name = pg.escapeIdentifier(table);
    await ledger.#pool.query(`DROP TABLE IF EXISTS ${name}`);
    await ledger.#pool.query(
      `CREATE TABLE ${name} (id text PRIMARY KEY, account jsonb NOT NULL, fence bigint NOT NULL DEFAULT ${NO_FENCE})`,
    );
    for (const account of accounts) {
      await ledger.#pool.query(`INSERT INTO ${name} (id, account) VALUES ($1, $2)`, [
        account.id,
        JSON.stringify(account),
      ]);
    }
    return ledger;
  }

  async read(accountId: string, options: StoreAccessOptions = {}): Promise<Account> {
    if (options.fence === undefined) {
      const { rows } = await this.#pool.query<{ account: Account }>(
        `SELECT account FROM ${pg.escapeIdentifier(this.#table)} WHERE id = $1`,
        [accountId],
      );
      return rows[0]!.account;
    }
    // A fenced read: claims the row for this fence, so that older holders are shut out.
    const result = await fencedUpdate<{ account: Account }>(this.#pool, {
      table: this.#table,
      where: { id: accountId },
      fence: options.fence,
      returning: ['account'],
    });
    if (!result.updated) throw await this.#stale(accountId, options.fence);
    return result.rows[0]!.account;
  }

  async write(account: Account, options: StoreAccessOptions = {}): Promise<void> {
    if (options.fence === undefined) {
      await this.#pool.query(
        `UPDATE ${pg.escapeIdentifier(this.#table)} SET account = $2 WHERE id = $1`,
        [account.id, JSON.stringify(account)],
      );
      return;
    }
    const result = await fencedUpdate(this.#pool, {
      table: this.#table,
      set: { account: JSON.stringify(account) },
      where: { id: account.id },
      fence: options.fence,
    });
    if (!result.updated) throw await this.#stale(account.id, options.fence);
  }

  async readAll(): Promise<Account[]> {
    const { rows } = await this.#pool.query<{ account: Account }>(
      `SELECT account FROM ${pg.escapeIdentifier(this.#table)} ORDER BY id`,
    );
    return rows.map((row) => row.account);
  }

  /**
   * The process must block (it plays a frozen process), yet the fence lives in PostgreSQL: a
   * worker thread polls it and wakes this thread, which waits on shared memory meanwhile.
   */
  freezeUntilFenceAbove(accountId: string, fence: bigint, giveUpAt: number): void {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const watcher = new Worker(
      fileURLToPath(new URL('./postgres-fence-watcher.mjs', import.meta.url)),
      { workerData: { url: this.#url, table: this.#table, accountId, fence: String(fence), cell } },
    );
    // Reported after the freeze, if at all: the freeze then ends at `giveUpAt`.
    watcher.on('error', () => undefined);
    while (Atomics.load(cell, 0) === 0 && Date.now() < giveUpAt) Atomics.wait(cell, 0, 0, 50);
    void watcher.terminate();
  }

  async close(options: { readonly drop?: boolean } = {}): Promise<void> {
    try {
      if (options.drop)
        await this.#pool.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(this.#table)}`);
    } finally {
      await this.#pool.end();
    }
  }

  async #stale(accountId: string, fence: bigint): Promise<StaleFenceError> {
    const { rows } = await this.#pool.query<{ fence: string }>(
      `SELECT fence FROM ${pg.escapeIdentifier(this.#table)} WHERE id = $1`,
      [accountId],
    );
    return new StaleFenceError(accountId, fence, BigInt(rows[0]?.fence ?? NO_FENCE));
  }
}
