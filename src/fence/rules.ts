/**
 * The guards' one rule, written once here for the file guard and mirrored by the Redis script
 * (`redis-script.ts`) and the PostgreSQL statements (`postgres.ts`).
 *
 * A resource remembers two numbers: the highest fence of an *exclusive* access (a mutex holder, a
 * writer) and the highest fence of a *shared* access (a reader, a semaphore permit). Every grant of
 * a key, of either mode, gets a fence greater than every fence issued before it (`core/kinds.ts`),
 * so:
 * - an exclusive access with fence `f` is stale if the resource has seen any access with a higher
 *   fence: that grant came after `f`'s, and since `f` excluded everybody, `f`'s lease had ended;
 * - a shared access with fence `f` is stale only if it has seen a higher *exclusive* fence: a
 *   writer granted after `f` excluded `f`, so `f`'s lease had ended. Higher shared fences say
 *   nothing: readers hold side by side, and a reader registering its fence must not refuse an older
 *   reader that still holds.
 * An access that passes raises its mode's number to its fence. Equal fences pass: one holder may
 * read and write several times under one lease.
 */
import type { LockMode } from '../core/backend.js';
import { InvalidArgumentError } from '../core/errors.js';

/**
 * Who accesses a guarded resource: a `Lease` (its `fence` and `mode`), `{ fence, mode }`, or a
 * bare fence (an exclusive access).
 */
export type FenceHolder = bigint | { readonly fence: bigint; readonly mode?: LockMode };

/** An access to check: its fence, and whether it is shared. */
export interface Access {
  readonly fence: bigint;
  readonly shared: boolean;
}

/** What a resource remembers: the highest fence of each mode seen so far (`null`: none yet). */
export interface FenceState {
  /** Highest fence of an exclusive access (a mutex holder or a writer). */
  readonly fence: bigint | null;
  /** Highest fence of a shared access (a reader or a semaphore permit). */
  readonly sharedFence: bigint | null;
}

/** The state of a resource no holder has accessed. */
export const UNFENCED: FenceState = Object.freeze({ fence: null, sharedFence: null });

/** Validate a {@link FenceHolder} and return the access it makes. */
export function accessOf(holder: FenceHolder, option = 'holder'): Access {
  const fence = typeof holder === 'bigint' ? holder : holder?.fence;
  if (typeof fence !== 'bigint' || fence < 0n) {
    throw new InvalidArgumentError(
      option,
      `must be a lease, { fence, mode } or a non-negative bigint fence, got ${describe(holder)}`,
    );
  }
  const mode = typeof holder === 'bigint' ? 'exclusive' : (holder.mode ?? 'exclusive');
  if (mode !== 'exclusive' && mode !== 'shared') {
    throw new InvalidArgumentError(option, `mode must be 'exclusive' or 'shared'`);
  }
  return { fence, shared: mode === 'shared' };
}

/** The fence that makes `access` stale against `state`, or `null` if the access may go ahead. */
export function outranking(state: FenceState, access: Access): bigint | null {
  if (state.fence !== null && access.fence < state.fence) return state.fence;
  if (!access.shared && state.sharedFence !== null && access.fence < state.sharedFence) {
    return state.sharedFence;
  }
  return null;
}

/** `state` after `access` went ahead (its mode's number raised to its fence). */
export function afterAccess(state: FenceState, access: Access): FenceState {
  return access.shared
    ? { fence: state.fence, sharedFence: max(state.sharedFence, access.fence) }
    : { fence: max(state.fence, access.fence), sharedFence: state.sharedFence };
}

function max(a: bigint | null, b: bigint): bigint {
  return a === null || b > a ? b : a;
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) return 'an object without a bigint fence';
  return typeof value === 'string' ? `"${value}"` : String(value);
}
