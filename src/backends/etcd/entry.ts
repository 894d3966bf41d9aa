/**
 * One queue entry: the etcd key a request holds or waits under, and what its value says.
 *
 * The value is the request's token, as UTF-8 (etcd's recipe writes an empty value: a Go holder
 * shows as token `''`). Every read and write of a value goes through {@link entryValue} and
 * {@link readEntry}, so that a later entry kind can carry more here (a shared holder's mode and a
 * semaphore's limit) in a form told apart from a plain token, with nothing else to change.
 */
import type { IKeyValue } from 'etcd3';
import type { EtcdSession } from './session.js';

/** How an entry holds its lock. Only exclusive (mutex) entries exist so far. */
export type EntryMode = 'exclusive';

/** What an entry's value says. */
export interface EntryValue {
  readonly token: string;
  readonly mode: EntryMode;
}

/** The value to store for a request with `token`. */
export function entryValue(token: string): Buffer {
  return Buffer.from(token);
}

/** What a stored entry says (any writer's: distlock's or etcd's recipe's). */
export function readEntry(kv: IKeyValue): EntryValue {
  return { token: kv.value.toString(), mode: 'exclusive' };
}

/** One queue entry this backend wrote (or is about to write) for one request. */
export interface Entry {
  readonly dir: string;
  /** The etcd key, without the client's namespace. */
  readonly name: string;
  /** The etcd key as stored (under the client's namespace). */
  readonly raw: Buffer;
  readonly slot: number;
  readonly token: string;
  readonly session: EtcdSession;
}
