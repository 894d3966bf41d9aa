/**
 * Keeps a holding's blob lease alive past the store's limit. A blob lease lasts 15 to 60 s (whole
 * seconds, fixed when it is acquired: a renewal restarts it with the same duration), so a TTL
 * longer than the lease's duration is served by renewing the blob lease at half its duration
 * until the holding's deadline is covered. If those renewals fail (the account is unreachable)
 * the holding's `lost` signal aborts before the last successful renewal's lease can end; if the
 * lease turns out to be someone else's, it aborts at once. The core follows that signal: the
 * lease's `signal` fires and `extend` throws.
 *
 * Each holding made by this backend instance has a keeper (extends from another process have
 * none: see `backend.ts`). Without renewals to do, it only waits to forget the holding after its
 * deadline.
 */
import { LockLostError } from '../../core/errors.js';

/**
 * Renew the blob lease (conditioned on `etag`, see `fence.ts`): `renewed`, or `lost` when it is no
 * longer this holding's. Throws when unreachable.
 */
export type RenewLease = (etag: string | undefined) => Promise<'renewed' | 'lost'>;

/** Time before the store lease's end (as measured from the renewal's send) at which a keeper gives up. */
const SAFETY_MS = 1_000;
/** Pause between renewals that failed with a transient error. */
const RETRY_MS = 1_000;

export class LeaseKeeper {
  /** Aborted with a `LockLostError` once the holding cannot be kept. */
  readonly #lost = new AbortController();
  readonly #key: string;
  readonly #leaseMs: number;
  readonly #renew: RenewLease;
  readonly #forget: () => void;
  /** The blob's ETag after this holding's fence write: any later change is another holder's. */
  readonly etag: string | undefined;
  /** Local deadline the holding must be kept until. */
  #deadline = 0;
  /** The earliest local time the store lease can end (the last successful send + its duration). */
  #storeUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Gives up at the store lease's end if no renewal succeeded by then (one may hang). */
  #guard: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    key: string,
    leaseSeconds: number,
    etag: string | undefined,
    renew: RenewLease,
    forget: () => void,
  ) {
    this.#key = key;
    this.etag = etag;
    this.#leaseMs = leaseSeconds * 1_000;
    this.#renew = renew;
    this.#forget = forget;
  }

  /** Aborts when the holding is lost (see the module doc). */
  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  /** The blob lease's duration, in whole seconds. */
  get leaseSeconds(): number {
    return this.#leaseMs / 1_000;
  }

  /** The store lease was (re)started by a request sent at `sentAt`; keep it until `sentAt + ttlMs`. */
  keep(sentAt: number, ttlMs: number): void {
    if (this.#stopped) return;
    this.#storeUntil = Math.max(this.#storeUntil, sentAt + this.#leaseMs);
    this.#deadline = sentAt + ttlMs;
    clearTimeout(this.#guard);
    if (this.#storeUntil < this.#deadline) {
      this.#guard = setTimeout(
        () => this.#lose('unreachable'),
        Math.max(0, this.#storeUntil - SAFETY_MS - Date.now()),
      );
      this.#guard.unref();
    }
    this.#schedule(sentAt + this.#leaseMs / 2);
  }

  /** True while the store lease, if still this holding's, is surely running (by the local clock). */
  live(): boolean {
    return Date.now() < this.#storeUntil - SAFETY_MS;
  }

  /** Stop renewing (released, or the backend closed). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#guard);
    this.#forget();
  }

  #schedule(renewAt: number): void {
    clearTimeout(this.#timer);
    const covered = this.#storeUntil >= this.#deadline;
    // Nothing to renew: forget the holding once its deadline has passed.
    const at = covered ? this.#deadline + SAFETY_MS : renewAt;
    this.#timer = setTimeout(() => void this.#tick(covered), Math.max(0, at - Date.now()));
    this.#timer.unref();
  }

  async #tick(covered: boolean): Promise<void> {
    if (this.#stopped) return;
    if (covered) {
      this.stop();
      return;
    }
    const sentAt = Date.now();
    let outcome: 'renewed' | 'lost' | 'unreachable';
    try {
      outcome = await this.#renew(this.etag);
    } catch {
      outcome = 'unreachable';
    }
    if (this.#stopped) return;
    if (outcome === 'renewed') {
      this.keep(sentAt, this.#deadline - sentAt);
    } else if (outcome === 'lost') {
      this.#lose('not-owner');
    } else {
      // The guard gives up at the store lease's end; until then, keep trying.
      this.#schedule(Date.now() + RETRY_MS);
    }
  }

  #lose(reason: 'not-owner' | 'unreachable'): void {
    if (this.#stopped) return;
    this.#lost.abort(new LockLostError(this.#key, reason));
    this.stop();
  }
}
