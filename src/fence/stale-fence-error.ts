import { LockError } from '../core/errors.js';

/**
 * A guarded resource refused an access because its fence is lower than one the resource has
 * already seen: the lease that carried it was lost (it expired while its holder was paused, or
 * its grant reached the holder too late) and a newer holder has used the resource since. Nothing
 * was read or written. Not retryable with the same fence: take the lock again and start over
 * (read again), since the newer holder may have changed what the stale holder read.
 */
export class StaleFenceError extends LockError {
  declare readonly code: 'STALE_FENCE';
  /** The guarded resource, as the guard names it (a Redis key, a file path, a table row). */
  readonly resource: string;
  /** The fence this access carried. */
  readonly fence: bigint;
  /** The fence the resource refused it against: the highest it has seen that outranks `fence`. */
  readonly highestFence: bigint;

  constructor(resource: string, fence: bigint, highestFence: bigint) {
    super(
      'STALE_FENCE',
      `stale fence ${fence} for "${resource}": the resource has already seen fence ${highestFence}`,
    );
    this.resource = resource;
    this.fence = fence;
    this.highestFence = highestFence;
  }
}
