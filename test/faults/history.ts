/**
 * The fault suite's history: what every worker did and what the injector did, as JSON lines. Times
 * are milliseconds of the host's monotonic clock (`process.hrtime.bigint()`, CLOCK_MONOTONIC, which
 * every process on the host shares), so events of different processes compare directly;
 * `performance.now()` would not do (its origin differs per process).
 */

/** The host's monotonic clock, in milliseconds (fractional). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Fields every worker event has: who (slot, and how many times the slot was respawned). */
interface WorkerFields {
  readonly slot: number;
  readonly gen: number;
}

/** An operation with a start and an end. */
interface Timed {
  readonly t0: number;
  readonly t1: number;
}

/** How a fenced access ended. */
export type AccessOutcome = 'ok' | 'stale' | 'error';

export type WorkerEvent = WorkerFields &
  (
    | { readonly type: 'ready'; readonly pid: number; readonly t: number }
    | (Timed & {
        readonly type: 'acquired';
        readonly fence: string;
        /** The lease's local deadline on the monotonic clock: when `lease.signal` is due. */
        readonly deadline: number;
      })
    | (Timed & { readonly type: 'acquire-failed'; readonly code: string })
    | (Timed & {
        readonly type: 'read';
        readonly fence: string;
        readonly outcome: AccessOutcome;
        /** Elements in the record read. */
        readonly size?: number;
        readonly code?: string;
      })
    | { readonly type: 'write-start'; readonly fence: string; readonly t: number }
    | (Timed & {
        readonly type: 'write';
        readonly fence: string;
        readonly element: string;
        readonly outcome: AccessOutcome;
        readonly code?: string;
      })
    | { readonly type: 'lost'; readonly fence: string; readonly reason: string; readonly t: number }
    | (Timed & {
        readonly type: 'released';
        readonly fence: string;
        readonly outcome: string;
      })
  );

/** What the injector did: a fault from `t0` to `t1`. */
export interface FaultEvent extends Timed {
  readonly type: 'fault';
  readonly kind: string;
  /** Who it hit: `slot 2`, `m1 (leader)`, `all links`, … */
  readonly target: string;
  /** For faults aimed at a holder: its slot and generation, and the fence it held. */
  readonly slot?: number;
  readonly gen?: number;
  readonly fence?: string;
  /** Holder pauses: whether it landed between the holder's read and its write. */
  readonly landed?: boolean;
}

export type HistoryEvent = WorkerEvent | FaultEvent;
