/**
 * The leases one manager holds: followed to their backend's `lost` signal, swept once past their
 * local deadline (so a lease nobody releases is still forgotten), and released when the manager
 * closes. The lock manager owns one; nothing else reads it.
 */
import { LockLostError } from './errors.js';
import type { Lease } from './lease.js';

/** How often held leases are checked for an unobserved expiry (memory hygiene only). */
const SWEEP_EVERY_MS = 1_000;

/** A backend's `lost` reason as the error a lease reports (under the caller's key). */
function lostError(key: string, reason: unknown): LockLostError {
  return reason instanceof LockLostError
    ? reason
    : new LockLostError(key, 'unreachable', { cause: reason });
}

/** The set of held leases of one manager, with their loss-following and their sweep. */
export class HeldLeases {
  readonly #held = new Set<Lease>();
  /**
   * Held leases by the backend `lost` signal they follow (backends that have one): one listener
   * per signal, however many leases share it (etcd: one signal per session). Adding and removing
   * an EventTarget listener per lease measurably slowed an uncontended acquire + release.
   */
  readonly #lostFollowers = new WeakMap<AbortSignal, Set<Lease>>();
  /** Each held lease's entry in `#lostFollowers`, removed when the lease settles. */
  readonly #following = new Map<Lease, Set<Lease>>();
  /** Runs while anything is held; unref'd. */
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** Hold `lease`; mark it lost when `lost` (the backend's signal for it) aborts. */
  add(lease: Lease, lost: AbortSignal | undefined): void {
    this.#held.add(lease);
    if (!this.#sweeper && !this.#closed) {
      this.#sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
      this.#sweeper.unref?.();
    }
    if (lost) this.#follow(lease, lost);
  }

  /** Forget `lease` (it was released, lost or expired). */
  settled(lease: Lease): void {
    this.#held.delete(lease);
    const followers = this.#following.get(lease);
    if (followers) {
      this.#following.delete(lease);
      followers.delete(lease);
    }
  }

  /** Mark lost every held lease of `key` with `token` (its release was forced by token). */
  markReleased(key: string, token: string): void {
    for (const lease of this.#held) {
      if (lease.key === key && lease.token === token)
        lease.markLost(new LockLostError(key, 'not-owner'));
    }
  }

  /** Forget held leases past their local deadline; stop sweeping once nothing is held. */
  sweep(): void {
    const now = Date.now();
    for (const lease of this.#held) lease.expireIfDue(now);
    if (this.#held.size === 0) this.#stopSweeping();
  }

  /** Stop sweeping and release every lease still held (best effort). */
  async releaseAll(): Promise<void> {
    this.#closed = true;
    this.sweep(); // an expired lease has nothing left to release
    this.#stopSweeping();
    await Promise.allSettled([...this.#held].map((lease) => lease.release()));
  }

  #stopSweeping(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  #follow(lease: Lease, lost: AbortSignal): void {
    if (lost.aborted) {
      lease.markLost(lostError(lease.key, lost.reason));
      return;
    }
    let followers = this.#lostFollowers.get(lost);
    if (!followers) {
      const leases = new Set<Lease>();
      followers = leases;
      this.#lostFollowers.set(lost, leases);
      lost.addEventListener(
        'abort',
        () => {
          // markLost settles each lease, which takes it out of the set: iterate over a copy.
          for (const follower of [...leases])
            follower.markLost(lostError(follower.key, lost.reason));
        },
        { once: true },
      );
    }
    followers.add(lease);
    this.#following.set(lease, followers);
  }
}
