/**
 * A held lock. The lease keeps a local deadline computed from the time the acquire (or extend)
 * request was *sent*, less a drift margin, so `signal` fires before any other client can take the
 * lock — even when the store is unreachable.
 *
 * The deadline's timer is armed only once something can observe it firing: `signal` was read, or
 * the manager has an `onEvent` handler (the `lost` event). Until then `lost` and every operation
 * compare the clock with the deadline when asked, and the manager sweeps unobserved expired leases
 * now and then (see `LockManager`). A timer per lease (set, unref, clear) was the largest single
 * share of the core's cost on an uncontended acquire + release.
 */
import type { LeaseRef, LockBackend, LockMode, ReleaseOutcome } from './backend.js';
import { LockLostError, type LockLostReason } from './errors.js';
import {
  emitSafely,
  type ExtendedEvent,
  type LockEventHandler,
  type LostEvent,
  type ReleasedEvent,
} from './events.js';
import { driftMs, validateBackendTtl } from './options.js';
import { withTimeout } from './race.js';

/** The events a lease emits, and what each adds to the fields they share. */
type LeaseEvent = ExtendedEvent | ReleasedEvent | LostEvent;
type OwnFields<E> = E extends LeaseEvent ? Omit<E, 'key' | 'backend' | 'token'> : never;

/** What a lease needs from the manager that created it (one object per manager). */
export interface LeaseContext {
  readonly backend: LockBackend;
  readonly driftFactor: number;
  /** The longest one store call (extend, release) may take before it fails as unavailable. */
  readonly operationTimeoutMs: number;
  readonly onEvent: LockEventHandler | undefined;
  /** Called once when the lease stops being held (released or lost). */
  readonly onSettled: (lease: Lease) => void;
}

/** Local deadline: when the request was sent, plus the validity, less the drift margin. */
export function localDeadline(
  sentAt: number,
  validityMs: number,
  ttlMs: number,
  driftFactor: number,
): number {
  return sentAt + validityMs - driftMs(ttlMs, driftFactor);
}

/**
 * A lease on a key, returned by `acquire`, `tryAcquire` and handed to `withLock`'s function.
 *
 * @example
 * ```ts
 * await using lease = await locks.acquire('order:42');
 * await db.update(order, { fence: lease.fence });   // the store rejects lower fences
 * ```
 */
export class Lease implements AsyncDisposable {
  /** The key as passed to `acquire`. */
  readonly key: string;
  /** Proves ownership; `release` and `extend` are refused for any other token. */
  readonly token: string;
  /**
   * Fencing token: strictly greater for every new holder of this key. Pass it to the protected
   * resource, which should reject writes carrying a fence lower than one it has seen.
   */
  readonly fence: bigint;
  /**
   * `exclusive` for a mutex or a writer; `shared` for a reader or a semaphore permit (other
   * shared leases on the key may be held at the same time).
   */
  readonly mode: LockMode;

  readonly #context: LeaseContext;
  // Created on first use of `signal`: most uncontended acquire/release pairs never read it, and
  // an AbortController per lease is a measurable share of the core's cost.
  #controller: AbortController | undefined;
  #lostError: LockLostError | undefined;
  /** The key as the backend sees it (with the manager's prefix). */
  readonly #backendKey: string;
  /** The TTL it was acquired with: `extend()`'s default. */
  readonly #ttlMs: number;
  /** For the `released` event's `heldMs` (read only when there is an event handler). */
  readonly #acquiredAt: number;
  #expiresAt: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** True once the expiry can be observed as it happens (signal read, or an event handler). */
  #watched: boolean;
  #settled = false;

  /** @internal Leases are created by the lock manager. */
  constructor(
    context: LeaseContext,
    fields: {
      key: string;
      backendKey: string;
      token: string;
      fence: bigint;
      expiresAt: number;
      ttlMs: number;
      mode: LockMode;
    },
  ) {
    this.#context = context;
    this.#backendKey = fields.backendKey;
    this.#ttlMs = fields.ttlMs;
    this.#acquiredAt = context.onEvent ? Date.now() : 0;
    this.key = fields.key;
    this.token = fields.token;
    this.fence = fields.fence;
    this.mode = fields.mode;
    this.#expiresAt = fields.expiresAt;
    this.#watched = context.onEvent !== undefined;
    if (this.#watched) this.#armExpiry();
  }

  /** Local deadline (epoch ms): the lease counts as lost from then on unless extended first. */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** Aborted, with a {@link LockLostError} as its reason, when the lease is lost or expires. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      this.expireIfDue();
      if (this.#lostError) this.#controller.abort(this.#lostError);
      else if (!this.#watched) {
        this.#watched = true;
        if (!this.#settled) this.#armExpiry();
      }
    }
    return this.#controller.signal;
  }

  /** True once the lease has been lost (expired or taken), not when it was released. */
  get lost(): boolean {
    this.expireIfDue();
    return this.#lostError !== undefined;
  }

  /**
   * Reset the lease's TTL to `ttlMs` from now.
   * @param ttlMs New time-to-live. @default the manager's `ttlMs`
   * @throws LockLostError if the lease is no longer held (and `signal` aborts);
   *   BackendUnavailableError (retryable) if the store could not be reached.
   */
  async extend(ttlMs: number = this.#ttlMs): Promise<void> {
    const backend = this.#context.backend;
    validateBackendTtl(ttlMs, backend.capabilities, backend.name);
    this.#throwIfLost();
    const sentAt = Date.now();
    const result = await withTimeout(
      backend.extend(this.#ref(), ttlMs),
      this.#context.operationTimeoutMs,
      () => `${backend.name} extend`,
    );
    if (!result.extended) {
      const error = new LockLostError(
        this.key,
        result.reason === 'expired' ? 'expired' : 'not-owner',
      );
      this.markLost(error);
      throw error;
    }
    if (this.lost) {
      // The local deadline passed while the extend was in flight: the caller was already told the
      // lease is gone, so give the store's copy back rather than hold a zombie.
      this.#context.backend.release(this.#ref()).catch(() => undefined);
      this.#throwIfLost();
    }
    this.#expiresAt = localDeadline(
      sentAt,
      result.validityMs ?? ttlMs,
      ttlMs,
      this.#context.driftFactor,
    );
    if (this.#watched) this.#armExpiry();
    if (this.#context.onEvent) this.#emit({ type: 'extended', expiresAt: this.#expiresAt });
  }

  /**
   * Give the lock back. Never throws for expected outcomes: `released`, `expired` (nobody held it
   * any more) or `not-owner` (someone else holds it now). Safe to call twice.
   * @throws BackendUnavailableError (retryable) if the store could not be reached.
   */
  async release(): Promise<ReleaseOutcome> {
    this.#disarmExpiry();
    const backend = this.#context.backend;
    const outcome = await withTimeout(
      backend.release(this.#ref()),
      this.#context.operationTimeoutMs,
      () => `${backend.name} release`,
    );
    const firstRelease = !this.#settled;
    this.#settle();
    if (this.#context.onEvent)
      this.#emit({
        type: 'released',
        outcome,
        ...(firstRelease ? { heldMs: Date.now() - this.#acquiredAt } : {}),
      });
    return outcome;
  }

  /** `await using lease = await locks.acquire(key)` releases the lease at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** @internal Mark the lease lost (once): abort the signal and emit `lost`. */
  markLost(error: LockLostError): void {
    this.#disarmExpiry();
    if (this.#lostError || this.#settled) return;
    this.#lostError = error;
    this.#controller?.abort(error);
    this.#settle();
    if (this.#context.onEvent) this.#emit({ type: 'lost', error });
  }

  /**
   * Emit one of this lease's events, with the fields every lease event shares. Callers check for
   * a handler first, so that no event object is built for nobody.
   */
  #emit(fields: OwnFields<LeaseEvent>): void {
    emitSafely(this.#context.onEvent, {
      key: this.key,
      backend: this.#context.backend.name,
      token: this.token,
      ...fields,
    } as LeaseEvent);
  }

  #ref(): LeaseRef {
    return { key: this.#backendKey, token: this.token };
  }

  /** @internal Mark the lease lost if its local deadline has passed (an unwatched lease). */
  expireIfDue(now: number = Date.now()): void {
    if (now >= this.#expiresAt && !this.#settled) this.#expire('expired');
  }

  #throwIfLost(): void {
    this.expireIfDue();
    if (this.#lostError) throw this.#lostError;
    if (this.#settled) throw new LockLostError(this.key, 'not-owner');
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#context.onSettled(this);
  }

  #armExpiry(): void {
    this.#disarmExpiry();
    const delay = Math.max(0, this.#expiresAt - Date.now());
    this.#timer = setTimeout(() => this.#expire('expired'), delay);
    this.#timer.unref?.();
  }

  #disarmExpiry(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #expire(reason: LockLostReason): void {
    this.markLost(new LockLostError(this.key, reason));
  }
}
