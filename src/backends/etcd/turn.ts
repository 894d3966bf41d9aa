/**
 * Whose turn it is: the one rule that says, from the entries ahead of ours in a lock's queue,
 * whether our entry holds the lock and, if not, which entries to wait for.
 *
 * An exclusive entry (a mutex, a writer) holds when no entry precedes it, whatever the kinds of the
 * entries ahead, as in etcd's recipe: it waits for the last entry of any kind before it. Shared
 * entries (readers, semaphore permits) follow the rule of `shared-turn.ts`, which reuses
 * {@link Turn}.
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
      /**
       * How many of the first watched entries grant us the lock by their deletion alone (no read
       * needed): 1 when our predecessor holds the lock and nothing else is in our way.
       */
      readonly grants: number;
    };

const HOLDS: Turn = Object.freeze({ holds: true });

/** Our turn, from the own entries ahead of ours, newest first (at most {@link AHEAD_READ}). */
export function turnOf(ahead: readonly IKeyValue[]): Turn {
  const [predecessor, beforePredecessor] = ahead;
  if (!predecessor) return HOLDS;
  // No entry before our predecessor: it holds the lock, and nobody can get in between (newer
  // entries queue behind us).
  return beforePredecessor
    ? { holds: false, watch: [predecessor, beforePredecessor], grants: 0 }
    : { holds: false, watch: [predecessor], grants: 1 };
}
