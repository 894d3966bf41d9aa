/**
 * Whose turn it is: the one rule that says, from the entries ahead of ours in a lock's queue,
 * whether our entry holds the lock and, if not, which entries to wait for.
 *
 * For a mutex (the only kind so far) an entry holds when no entry precedes it, as in etcd's
 * recipe. Shared entries (readers, semaphore permits) will extend this rule here: a shared entry
 * holds when no exclusive entry precedes it and fewer than its limit of shared ones do (a reader
 * waits for the last writer before it, a writer for the last entry of any kind: etcd's RWMutex).
 */
import type { IKeyValue } from 'etcd3';

/** How many entries ahead of ours {@link turnOf} needs, newest first. */
export const AHEAD_READ = 2;

/** The outcome of {@link turnOf}. */
export type Turn =
  | { readonly holds: true }
  | {
      readonly holds: false;
      /**
       * Entries whose deletion may give us the lock, nearest first: our predecessor, and the entry
       * before it while the predecessor does not hold the lock itself (when that one goes, we read
       * the queue again while our predecessor holds, so that its release needs no read).
       */
      readonly watch: readonly IKeyValue[];
      /** The first watched entry holds the lock: once it is gone, ours does (no read needed). */
      readonly blockerHolds: boolean;
    };

const HOLDS: Turn = Object.freeze({ holds: true });

/** Our turn, from the own entries ahead of ours, newest first (at most {@link AHEAD_READ}). */
export function turnOf(ahead: readonly IKeyValue[]): Turn {
  const [predecessor, beforePredecessor] = ahead;
  if (!predecessor) return HOLDS;
  // No entry before our predecessor: it holds the lock, and nobody can get in between (newer
  // entries queue behind us).
  return beforePredecessor
    ? { holds: false, watch: [predecessor, beforePredecessor], blockerHolds: false }
    : { holds: false, watch: [predecessor], blockerHolds: true };
}
