/**
 * The service's database: one JSON file per account in a directory, read and written with plain
 * `fs` calls, the way a naive service treats its store. Nothing here stops two workers from
 * reading the same account, both computing an update, and the second write silently undoing the
 * first: that lost update is the bug the demo shows.
 *
 * The store does understand fencing tokens, as a database or object store that supports them
 * would: it remembers the highest fence it has seen for each account and refuses a read or a write
 * that carries a lower one ({@link StaleFenceError}). A worker whose lease expired while it was
 * paused (a GC pause, a stopped VM) therefore cannot overwrite the work of the lock's next holder.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, readdir, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Ledger } from './ledger.js';
import type { Account } from './model.js';

/** A read or write carried a fence lower than one the store has already seen for the account. */
export class StaleFenceError extends Error {
  readonly accountId: string;
  readonly fence: bigint;
  readonly highestFence: bigint;

  constructor(accountId: string, fence: bigint, highestFence: bigint) {
    super(
      `stale fence ${fence} for ${accountId}: the store has already seen fence ${highestFence}`,
    );
    this.name = 'StaleFenceError';
    this.accountId = accountId;
    this.fence = fence;
    this.highestFence = highestFence;
  }
}

/** Options of one store call. */
export interface StoreAccessOptions {
  /** The caller's fencing token (its lease's fence). Without one, the store checks nothing. */
  readonly fence?: bigint;
}

/** No fence seen yet. */
const NO_FENCE = -1n;

/** Accounts on disk, one `<id>.json` per account, with its fence in `<id>.fence`. */
export class AccountStore implements Ledger {
  readonly #dir: string;

  /** Open the store kept in `dir` (see {@link AccountStore.create} to fill a new one). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Create a store in `dir` holding `accounts`. */
  static async create(dir: string, accounts: readonly Account[]): Promise<AccountStore> {
    await mkdir(dir, { recursive: true });
    const store = new AccountStore(dir);
    for (const account of accounts) await store.write(account);
    return store;
  }

  /** The account as it is on disk now. */
  async read(accountId: string, options: StoreAccessOptions = {}): Promise<Account> {
    return this.#atomically(accountId, async () => {
      await this.#checkFence(accountId, options.fence);
      return JSON.parse(await readFile(this.#accountPath(accountId), 'utf8')) as Account;
    });
  }

  /** Replace the account on disk with `account`. Throws {@link StaleFenceError} for a stale fence. */
  async write(account: Account, options: StoreAccessOptions = {}): Promise<void> {
    await this.#atomically(account.id, async () => {
      await this.#checkFence(account.id, options.fence);
      // Write a temporary file and rename it over the old one, so a reader never sees half a file.
      const temporary = `${this.#accountPath(account.id)}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(temporary, JSON.stringify(account));
      await rename(temporary, this.#accountPath(account.id));
    });
  }

  /** Every account, for the checks at the end of a run. */
  async readAll(): Promise<Account[]> {
    const files = (await readdir(this.#dir)).filter((name) => name.endsWith('.json')).sort();
    return Promise.all(files.map((name) => this.read(name.slice(0, -'.json'.length))));
  }

  /**
   * The highest fence seen for the account, read synchronously: the paused-worker fault polls it
   * while its event loop is blocked.
   */
  highestFenceSync(accountId: string): bigint {
    try {
      return BigInt(readFileSync(this.#fencePath(accountId), 'utf8'));
    } catch {
      return NO_FENCE;
    }
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

  /** Refuse a fence lower than the highest seen; otherwise remember it as the highest. */
  async #checkFence(accountId: string, fence: bigint | undefined): Promise<void> {
    if (fence === undefined) return;
    const highestFence = this.highestFenceSync(accountId);
    if (fence < highestFence) throw new StaleFenceError(accountId, fence, highestFence);
    if (fence > highestFence) await writeFile(this.#fencePath(accountId), String(fence));
  }

  /**
   * Run one statement (a read or a write, with its fence check) atomically, as a database runs a
   * single statement: a latch file held for the fraction of a millisecond the statement takes.
   * It makes single statements atomic; it cannot make read → payment-provider call → write
   * atomic. That needs the account lock.
   */
  async #atomically<T>(accountId: string, statement: () => Promise<T>): Promise<T> {
    const latchPath = join(this.#dir, `${accountId}.latch`);
    for (;;) {
      try {
        await (await open(latchPath, 'wx')).close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        await sleep(1);
      }
    }
    try {
      return await statement();
    } finally {
      await rm(latchPath, { force: true });
    }
  }

  #accountPath(accountId: string): string {
    return join(this.#dir, `${accountId}.json`);
  }

  #fencePath(accountId: string): string {
    return join(this.#dir, `${accountId}.fence`);
  }
}
