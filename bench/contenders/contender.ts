/**
 * The one small interface every benchmarked lock (and every floor) is put behind, so that the
 * scenarios time exactly the same loop for all of them.
 */

/** One client of a contender: its own connection(s) to the shared server. */
export interface LockClient<Handle = unknown> {
  /**
   * Take `key`, waiting the way the contender waits (its own retry settings). Resolves `null` when
   * the contender gave up by its own rules (retry count or acquire timeout); the scenario then
   * counts a give-up and asks again. Throws only on real failures.
   */
  acquire(key: string): Promise<Handle | null>;
  /** Release what {@link acquire} returned. */
  release(handle: Handle): Promise<void>;
  /** Close this client's connection(s). */
  close(): Promise<void>;
}

/** Which row of a table a contender is: a floor (what any lock must pay), a peer, or distlock. */
export type ContenderRole = 'floor' | 'peer' | 'distlock';

/** A named configuration of a lock library (or a floor) that can open clients. */
export interface Contender {
  /** Row label, e.g. `redlock (tuned)`. */
  readonly name: string;
  readonly role: ContenderRole;
  /** `false` for floors that do not exclude anybody (PING pairs, put+delete): not run in B2. */
  readonly excludes: boolean;
  /** `true` for the retry-tuned variant of a library (targets compare against these). */
  readonly tuned: boolean;
  /** The settings used, for the report. */
  readonly settings: string;
  /** Open a new client with its own connection(s). */
  createClient(): Promise<LockClient>;
}

/** Sleep without keeping the process alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
