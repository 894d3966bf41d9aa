/**
 * The service's database: one account per directory, each kept by a fence guard
 * (`fileFence` from `distlock/fence`), the way a database or object store that understands
 * fencing tokens keeps a row. Every single read or write is atomic, as a database statement is;
 * nothing here stops two workers from reading the same account, both computing an update, and the
 * second write silently undoing the first: that lost update is the bug the demo shows.
 *
 * With a lease's fence, the guard refuses a read or a write that carries a fence lower than one it
 * has already seen for the account ({@link StaleFenceError}). A worker whose lease expired while it
 * was paused (a GC pause, a stopped VM) therefore cannot overwrite the work of the lock's next
 * holder. Without a lease (the demo's unlocked run) every access carries fence 0, which passes
 * while nobody uses a real fence: no check at all, as a naive service has.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileFence, StaleFenceError, type FileFencedValue } from '../../src/fence/index.js';
import type { Ledger } from './ledger.js';
import type { Account } from './model.js';

export { StaleFenceError };

/** Options of one store call. */
export interface StoreAccessOptions {
  /** The caller's fencing token (its lease's fence). Without one, the store checks nothing. */
  readonly fence?: bigint;
}

/** Accesses without a lease: fence 0 passes every check while no lease's fence was seen. */
const NO_LEASE = 0n;

/** Accounts on disk, one fence-guarded directory per account. */
export class AccountStore implements Ledger {
  readonly #dir: string;
  readonly #accounts = new Map<string, FileFencedValue>();

  /** Open the store kept in `dir` (see {@link AccountStore.create} to fill a new one). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Create a store in `dir` holding `accounts`. */
  static async create(dir: string, accounts: readonly Account[]): Promise<AccountStore> {
    const store = new AccountStore(dir);
    for (const account of accounts) await store.write(account);
    return store;
  }

  /** The account as it is on disk now. Throws {@link StaleFenceError} for a stale fence. */
  async read(accountId: string, options: StoreAccessOptions = {}): Promise<Account> {
    const text = await this.#account(accountId).read(options.fence ?? NO_LEASE);
    if (text === null) throw new Error(`no account ${accountId}`);
    return JSON.parse(text) as Account;
  }

  /** Replace the account on disk with `account`. Throws {@link StaleFenceError} for a stale fence. */
  async write(account: Account, options: StoreAccessOptions = {}): Promise<void> {
    await this.#account(account.id).write(JSON.stringify(account), options.fence ?? NO_LEASE);
  }

  /** Every account, for the checks at the end of a run (no fence: nobody writes any more). */
  async readAll(): Promise<Account[]> {
    const ids = (await readdir(this.#dir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    return Promise.all(
      ids.map(async (id) => JSON.parse((await this.#account(id).peek()) ?? 'null') as Account),
    );
  }

  /**
   * The highest fence seen for the account (-1 if none), read synchronously: the paused-worker
   * fault polls it while its event loop is blocked.
   */
  highestFenceSync(accountId: string): bigint {
    return this.#account(accountId).fencesSync().fence ?? -1n;
  }

  freezeUntilFenceAbove(accountId: string, fence: bigint, giveUpAt: number): void {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    while (this.highestFenceSync(accountId) <= fence && Date.now() < giveUpAt) {
      Atomics.wait(cell, 0, 0, 20);
    }
  }

  async close(): Promise<void> {
    // Plain files: nothing to close.
  }

  #account(accountId: string): FileFencedValue {
    let account = this.#accounts.get(accountId);
    if (!account) {
      // The demo's store is scratch data: no fsync, so the demo stays quick.
      account = fileFence(join(this.#dir, accountId), { fsync: false });
      this.#accounts.set(accountId, account);
    }
    return account;
  }
}
