/**
 * Keeps a lease alive while work runs: extend every `renewEveryMs`; on a transient failure retry
 * sooner, until the lease's local deadline ends it. Never throws from its timer.
 */
import { LockLostError } from './errors.js';
import type { Lease } from './lease.js';

/** Retry a failed renewal no sooner than this, so a dead store is not hammered. */
const MIN_RETRY_MS = 20;

export interface Renewal {
  stop(): void;
}

export function startRenewal(lease: Lease, ttlMs: number, renewEveryMs: number): Renewal {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const schedule = (delayMs: number) => {
    if (stopped || lease.lost) return;
    timer = setTimeout(tick, delayMs);
    timer.unref?.();
  };

  const tick = () => {
    lease.extend(ttlMs).then(
      () => schedule(renewEveryMs),
      (error: unknown) => {
        if (error instanceof LockLostError) return; // the lease's signal has already fired
        // Transient: try again well before the local deadline, which ends the lease if we never get through.
        const left = lease.expiresAt - Date.now();
        schedule(Math.max(MIN_RETRY_MS, Math.min(renewEveryMs, Math.floor(left / 3))));
      },
    );
  };

  schedule(renewEveryMs);
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
