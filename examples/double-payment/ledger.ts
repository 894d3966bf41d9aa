/**
 * Where the accounts live: JSON files in a directory (the default), or a table in PostgreSQL when
 * the demo's lock backend is PostgreSQL (`--backend postgres://…`), so that the fence is checked by
 * the database in the same `UPDATE` as the write. Workers and the demo see only {@link Ledger}.
 */
import type { Account } from './model.js';
import { AccountStore, type StoreAccessOptions } from './store.js';

/** Where one run's accounts live (sent to the workers in each run's config). */
export type LedgerLocation =
  | { readonly kind: 'files'; readonly dir: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly table: string };

/** The accounts, with the fence checks a store that understands fencing tokens makes. */
export interface Ledger {
  /** The account; with a fence, refused (`StaleFenceError`) if a newer fence has used it. */
  read(accountId: string, options?: StoreAccessOptions): Promise<Account>;
  /** Replace the account; with a fence, refused (`StaleFenceError`) if a newer fence has used it. */
  write(account: Account, options?: StoreAccessOptions): Promise<void>;
  readAll(): Promise<Account[]>;
  /**
   * Block this whole process (timers included, like a stop-the-world pause) until a fence higher
   * than `fence` has used the account, or until `giveUpAt` (epoch ms).
   */
  freezeUntilFenceAbove(accountId: string, fence: bigint, giveUpAt: number): void;
  /** Close connections; with `drop`, remove the accounts too (the demo is done with them). */
  close(options?: { readonly drop?: boolean }): Promise<void>;
}

/** Create a ledger at `location` holding `accounts`. */
export async function createLedger(
  location: LedgerLocation,
  accounts: readonly Account[],
): Promise<Ledger> {
  if (location.kind === 'files') return AccountStore.create(location.dir, accounts);
  const { PostgresLedger } = await import('./postgres-ledger.js');
  return PostgresLedger.create(location.url, location.table, accounts);
}

/** Open the ledger at `location`. */
export async function openLedger(location: LedgerLocation): Promise<Ledger> {
  if (location.kind === 'files') return new AccountStore(location.dir);
  const { PostgresLedger } = await import('./postgres-ledger.js');
  return new PostgresLedger(location.url, location.table);
}

/** True for the lock backend URLs whose store can also keep the ledger (PostgreSQL). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url.trim());
}
