/**
 * Events the lock manager emits through `onEvent`: the basis for logs and metrics. A throwing
 * handler is ignored (reported with `process.emitWarning`): observability never breaks locking.
 */
import type { LockLostError } from './errors.js';
import type { ReleaseOutcome } from './backend.js';

interface BaseEvent {
  /** The key as the caller gave it (without the manager's prefix). */
  readonly key: string;
  /** Name of the backend, e.g. `files`. */
  readonly backend: string;
}

/** A lease was taken. `waitedMs` is 0 for a first-try success. */
export interface AcquiredEvent extends BaseEvent {
  readonly type: 'acquired';
  readonly token: string;
  readonly fence: bigint;
  readonly waitedMs: number;
  readonly attempts: number;
}

/** A lease was released (or the release found it expired / owned by another token). */
export interface ReleasedEvent extends BaseEvent {
  readonly type: 'released';
  readonly token: string;
  readonly outcome: ReleaseOutcome;
  /** How long the lease was held, for leases this manager acquired; otherwise undefined. */
  readonly heldMs?: number;
}

/** A lease's TTL was renewed. */
export interface ExtendedEvent extends BaseEvent {
  readonly type: 'extended';
  readonly token: string;
  readonly expiresAt: number;
}

/** A lease was lost without being released; `error.reason` says why. */
export interface LostEvent extends BaseEvent {
  readonly type: 'lost';
  readonly token: string;
  readonly error: LockLostError;
}

/** An acquire had to wait; emitted when the wait ends, however it ends. */
export interface WaitedEvent extends BaseEvent {
  readonly type: 'waited';
  readonly waitedMs: number;
  readonly outcome: 'acquired' | 'timeout' | 'aborted' | 'error';
  readonly attempts: number;
}

export type LockEvent = AcquiredEvent | ReleasedEvent | ExtendedEvent | LostEvent | WaitedEvent;

export type LockEventHandler = (event: LockEvent) => void;

/** Call the handler, never letting it throw into the caller or a timer. */
export function emitSafely(handler: LockEventHandler | undefined, event: LockEvent): void {
  if (!handler) return;
  try {
    handler(event);
  } catch (error) {
    process.emitWarning(`distlock: onEvent handler threw on "${event.type}": ${String(error)}`);
  }
}
