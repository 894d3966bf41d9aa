/**
 * One queue entry: the etcd key a request holds or waits under, and what its value says.
 *
 * - An exclusive entry (a mutex, a writer) stores its request's token as UTF-8, exactly as
 *   before the kinds (etcd's recipe writes an empty value: a Go holder shows as an exclusive
 *   holder with token `''`). So `etcdctl lock` and Go's `concurrency.Mutex` stay interchangeable
 *   with distlock's mutex, and they see a shared entry as one more key ahead of theirs.
 * - A shared entry (a reader, a semaphore permit) stores byte 0xFF, its claim (`r` for a reader,
 *   `s<limit>` for a permit), byte 0xFF again, then the token. Byte 0xFF never occurs in UTF-8, so
 *   no token (and no value etcd's recipe writes) can be mistaken for a shared entry, and the token
 *   after the second 0xFF needs no escaping.
 *
 * Every read and write of a value goes through {@link entryValue} and {@link readEntry}.
 */
import type { IKeyValue } from 'etcd3';
import { EXCLUSIVE, READER, permit, type Claim } from '../../core/kinds.js';
import type { EtcdSession } from './session.js';

/** Marks a shared entry's value (and ends its claim): a byte that UTF-8 never contains. */
const SHARED_MARK = 0xff;

/** What an entry's value says. */
export interface EntryValue extends Claim {
  readonly token: string;
}

/** The value to store for a request with `token` and `claim` (exclusive when absent). */
export function entryValue(token: string, claim: Claim = EXCLUSIVE): Buffer {
  if (claim.mode === 'exclusive') return Buffer.from(token);
  const kind = claim.limit === Infinity ? 'r' : `s${claim.limit}`;
  return Buffer.concat([
    Buffer.from([SHARED_MARK]),
    Buffer.from(kind),
    Buffer.from([SHARED_MARK]),
    Buffer.from(token),
  ]);
}

/** A shared entry's claim, from the part of its value between the two marks. */
function sharedClaim(kind: string): Claim | undefined {
  if (kind === 'r') return READER;
  if (!/^s[1-9][0-9]{0,9}$/.test(kind)) return undefined;
  return permit(Number(kind.slice(1)));
}

/** What a stored entry says (any writer's: distlock's or etcd's recipe's). */
export function readEntry(kv: IKeyValue): EntryValue {
  const value = kv.value;
  if (value.length > 0 && value[0] === SHARED_MARK) {
    const end = value.indexOf(SHARED_MARK, 1);
    const claim = end > 0 ? sharedClaim(value.subarray(1, end).toString('latin1')) : undefined;
    // A value we cannot read is someone else's exclusive entry: waiting for it is the safe side.
    if (claim) return { ...claim, token: value.subarray(end + 1).toString() };
  }
  return { ...EXCLUSIVE, token: value.toString() };
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
  /** How the entry holds its lock. */
  readonly claim: Claim;
  readonly session: EtcdSession;
}
