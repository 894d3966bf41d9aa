/**
 * Whose turn it is for a shared entry (a reader, a semaphore permit), and who holds a lock now:
 * the rules of `core/kinds.ts` over a lock's queue of entries in create-revision order.
 *
 * An entry holds when every entry ahead of it is shared and fewer than its limit of them are
 * ahead (so an exclusive entry holds only at the head, as in etcd's recipe). Since entries ahead
 * of ours can only be deleted, never created, a queue in create-revision order is exactly the
 * FIFO queue of `kinds.ts`: holders are a prefix of it, a shared waiter that arrives after a
 * waiting writer is behind it (no writer starvation), and semaphore waiters are served in arrival
 * order. This is the shape of etcd's own RWMutex recipe: a reader waits for the last writer
 * created before it, a writer (`turn.ts`) for the last entry of any kind.
 *
 * Limits: a key's limit is that of its oldest shared entry. A shared request whose limit differs
 * is refused with `LimitMismatchError` (its entry taken back); comparing with the oldest shared
 * entry only, not every entry ahead, keeps a request that is about to be refused from making a
 * later, agreeing one fail too.
 */
import type { IKeyValue } from 'etcd3';
import { checkLimit, type Claim } from '../../core/kinds.js';
import { readEntry } from './entry.js';
import type { Turn } from './turn.js';

/**
 * How many entries ahead a waiter watches one by name at most (their watchers are kept and
 * reused); a full semaphore's waiter with more entries ahead watches its whole directory instead.
 */
export const SHARED_WATCH_MOST = 16;

const HOLDS: Turn = Object.freeze({ holds: true });

/**
 * The turn of a shared entry with `claim`, from every own entry ahead of it (oldest first, with
 * values):
 * - behind an exclusive entry: wait for the last one ahead; its deletion alone grants when it is
 *   the holder and fewer than the limit of shared entries follow it (a batch of readers or
 *   permits behind a writer gets the key at the writer's release without a read);
 * - behind shared entries only: hold when fewer than the limit are ahead; else watch every entry
 *   ahead (holders leave in any order, and waiters ahead may give up), any of whose deletions
 *   grants when exactly the limit is ahead.
 */
export function sharedTurnOf(ahead: readonly IKeyValue[], claim: Claim): Turn {
  let lastExclusive = -1;
  for (let i = ahead.length - 1; i >= 0; i -= 1) {
    if (readEntry(ahead[i]!).mode === 'exclusive') {
      lastExclusive = i;
      break;
    }
  }
  if (lastExclusive >= 0) {
    const behindIt = ahead.length - lastExclusive - 1;
    const grants = lastExclusive === 0 && behindIt < claim.limit ? 1 : 0;
    return { holds: false, watch: [ahead[lastExclusive]!], grants };
  }
  if (ahead.length < claim.limit) return HOLDS;
  return { holds: false, watch: ahead, grants: ahead.length === claim.limit ? ahead.length : 0 };
}

/**
 * Throw `LimitMismatchError` if the key's limit (its oldest shared entry's, among `ahead`)
 * differs from a shared `claim`'s.
 */
export function checkSharedLimit(key: string, claim: Claim, ahead: readonly IKeyValue[]): void {
  if (claim.mode !== 'shared') return;
  for (const kv of ahead) {
    const entry = readEntry(kv);
    if (entry.mode === 'shared') return checkLimit(key, claim, [entry]);
  }
}

/**
 * The entries of `queue` (a lock's own entries, oldest first, with values) that hold the lock
 * now: the head if it is exclusive, else each shared entry before the first exclusive one with
 * fewer than its limit ahead of it.
 */
export function holdersOf(queue: readonly IKeyValue[]): IKeyValue[] {
  const first = queue[0];
  if (!first) return [];
  if (readEntry(first).mode === 'exclusive') return [first];
  const holders: IKeyValue[] = [];
  for (let i = 0; i < queue.length; i += 1) {
    const entry = readEntry(queue[i]!);
    if (entry.mode === 'exclusive') break;
    if (i < entry.limit) holders.push(queue[i]!);
  }
  return holders;
}
