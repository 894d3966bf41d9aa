/**
 * A session: one etcd lease that the queue entries of one lease TTL are put under, kept alive
 * every TTL/3 over one keep-alive stream (see `sessions.ts` for why one per TTL).
 *
 * Why a shared lease rather than one per lock: acquiring is then a single write (a txn that puts
 * the entry under the session's lease) and releasing a single write (a delete), where a lease per
 * lock costs a grant and a revoke on top; and one keep-alive message per TTL/3 serves every lock
 * of that TTL this process holds. The price is that etcd only frees a lock by itself when the
 * session dies (process crash, partition): a live holder that stops extending is reaped by its
 * own backend at the lock's TTL instead (see `holdings.ts`).
 *
 * Local deadline: etcd restarts the lease's TTL when it *receives* a keep-alive, which is after we
 * sent it, so `sentAt + ttl` (less a drift margin) of the last answered keep-alive is a moment
 * before which etcd cannot have expired the lease. If no keep-alive gets through by then, the
 * session is lost: its `signal` aborts, and every lock held under it is reported lost before etcd
 * can let anyone else in.
 */
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { setMaxListeners } from 'node:events';
import { BackendUnavailableError } from '../../core/errors.js';
import type { EtcdCalls } from './calls.js';
import type { ResolvedEtcdOptions } from './options.js';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** Clock drift allowance taken off the session's local deadline (as the core does for leases). */
function driftMs(ttlMs: number): number {
  return Math.floor(ttlMs * 0.01) + 2;
}

/** How long a session without entries lives on (for the next lock of its TTL) before it is revoked. */
const IDLE_CLOSE_MS = 60_000;

/** One etcd lease kept alive until it is closed, lost, or unused for a while. */
export class EtcdSession {
  /** The etcd lease ID (a decimal string: IDs exceed 2^53). */
  readonly leaseId: string;
  /** The lease's TTL as etcd granted it (whole seconds, at least etcd's minimum). */
  readonly ttlMs: number;
  readonly #calls: EtcdCalls;
  readonly #options: ResolvedEtcdOptions;
  readonly #controller = new AbortController();
  /** Aborted only by a loss, not by `close()`: see {@link EtcdSession.lostSignal}. */
  readonly #lost = new AbortController();
  readonly #intervalMs: number;
  #lastOkSentAt: number;
  #stream: KeepAliveStream | undefined;
  #opening = false;
  /** Send times of keep-alives not answered yet, oldest first (etcd answers in order). */
  #pending: number[] = [];
  #interval: ReturnType<typeof setInterval> | undefined;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Entry slots in use per lock directory (see `KeyLayout.entry`). */
  readonly #slots = new Map<string, Set<number>>();
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Called once the session has had no entry for a while (see {@link EtcdSession.grant}). */
  readonly #onIdle: (session: EtcdSession) => void;

  private constructor(
    calls: EtcdCalls,
    leaseId: string,
    ttlMs: number,
    grantSentAt: number,
    options: ResolvedEtcdOptions,
    onIdle: (session: EtcdSession) => void,
  ) {
    this.#calls = calls;
    this.leaseId = leaseId;
    this.ttlMs = ttlMs;
    this.#options = options;
    this.#onIdle = onIdle;
    this.#lastOkSentAt = grantSentAt;
    // Every waiter listens for the session's loss: many at once is expected, not a leak.
    setMaxListeners(0, this.#controller.signal);
    // Every lock held under the session listens for its loss (through the core).
    setMaxListeners(0, this.#lost.signal);
    this.#intervalMs = Math.max(1, Math.floor(ttlMs / 3));
    this.#interval = setInterval(() => this.#keepAlive(), this.#intervalMs);
    this.#interval.unref?.();
    this.#armDeadline();
    this.#armIdle();
    this.#emit({ type: 'granted', leaseId, deadline: this.deadline });
  }

  /**
   * Grant a new lease of `ttlSeconds` (etcd may raise it to its minimum) and start keeping it
   * alive. `onIdle` is told when the session has had no entry for a while.
   */
  static async grant(
    calls: EtcdCalls,
    ttlSeconds: number,
    options: ResolvedEtcdOptions,
    onIdle: (session: EtcdSession) => void,
  ): Promise<EtcdSession> {
    // The first attempt's send time: no later than etcd started the granted lease's TTL.
    const sentAt = Date.now();
    const response = await calls.run('session lease grant', (callOptions) =>
      calls.client.leaseClient.leaseGrant({ TTL: ttlSeconds }, callOptions),
    );
    if (response.error) {
      throw calls.toLockError(new Error(response.error), 'session lease grant');
    }
    const grantedMs = Math.max(ttlSeconds, Number(response.TTL)) * 1000;
    return new EtcdSession(calls, response.ID, grantedMs, sentAt, options, onIdle);
  }

  /** Aborted (with a `BackendUnavailableError` reason) when the session is lost or closed. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * Aborted (with the same reason as {@link EtcdSession.signal}, just after it) when the session
   * is lost, but not when it is closed: the `lost` signal every lock held under this session
   * shares. Closing the backend ends its holdings first, so they are not reported lost.
   */
  get lostSignal(): AbortSignal {
    return this.#lost.signal;
  }

  get lost(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Local epoch ms before which etcd cannot have expired this lease. */
  get deadline(): number {
    return this.#lastOkSentAt + this.ttlMs - driftMs(this.ttlMs);
  }

  /**
   * Reserve the lowest entry slot of `dir` this session is not using. A slot stays reserved until
   * its entry is known to be gone from etcd, so an entry name is never shared by two requests.
   */
  reserveSlot(dir: string): number {
    let used = this.#slots.get(dir);
    if (!used) this.#slots.set(dir, (used = new Set()));
    let slot = 0;
    while (used.has(slot)) slot += 1;
    used.add(slot);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    return slot;
  }

  /** The entry of `slot` is gone from etcd (or was never written): its name may be reused. */
  freeSlot(dir: string, slot: number): void {
    const used = this.#slots.get(dir);
    used?.delete(slot);
    if (used?.size === 0) this.#slots.delete(dir);
    if (this.#slots.size === 0) this.#armIdle();
  }

  #armIdle(): void {
    if (this.lost || this.#idleTimer !== undefined) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#slots.size === 0 && !this.lost) this.#onIdle(this);
    }, IDLE_CLOSE_MS);
    this.#idleTimer.unref?.();
  }

  /**
   * Declare the session lost (keep-alives failed, or etcd said the lease is gone): abort its
   * signal, stop keeping it alive and revoke it, so that etcd frees its locks now rather than
   * when it notices.
   */
  markLost(error: Error): void {
    if (this.lost) return;
    this.#controller.abort(error);
    // After `signal`: the backend's listener there marks the holdings done before anyone hears.
    this.#lost.abort(error);
    this.#stop();
    this.#emit({ type: 'lost', leaseId: this.leaseId, error });
    this.#revoke().catch(() => undefined);
  }

  /**
   * Stop keeping the lease alive and revoke it (deleting every entry under it), retrying through
   * an outage until `until` or the lease's own end, whichever comes first. Never rejects.
   */
  async close(until: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const wasLost = this.lost;
    if (!wasLost) this.#controller.abort(new BackendUnavailableError('etcd session closed'));
    this.#stop();
    if (wasLost) return;
    // After its deadline etcd may have expired the lease already: nothing left to revoke.
    await this.#revoke(Math.min(until, this.deadline)).catch(() => undefined);
  }

  async #revoke(until?: number): Promise<void> {
    await this.#calls.run(
      'session lease revoke',
      (callOptions) =>
        this.#calls.client.leaseClient.leaseRevoke({ ID: this.leaseId }, callOptions),
      until === undefined ? { tries: 1 } : { until },
    );
  }

  #stop(): void {
    clearInterval(this.#interval);
    clearTimeout(this.#deadlineTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#idleTimer);
    this.#interval = this.#deadlineTimer = this.#retryTimer = this.#idleTimer = undefined;
    this.#dropStream();
  }

  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = setTimeout(
      () => {
        this.markLost(
          new BackendUnavailableError(
            `etcd session lease ${this.leaseId} lost: no keep-alive got through within ${this.ttlMs} ms`,
          ),
        );
      },
      Math.max(0, this.deadline - Date.now()),
    );
    this.#deadlineTimer.unref?.();
  }

  #keepAlive(): void {
    if (this.lost) return;
    const oldest = this.#pending[0];
    if (oldest !== undefined && Date.now() - oldest >= this.#intervalMs) {
      // No answer for a whole interval: the stream's member may be stuck; open a fresh stream
      // (the pool may pick another member).
      this.#dropStream();
    }
    if (this.#stream) {
      this.#send(this.#stream);
      return;
    }
    if (this.#opening) return;
    this.#opening = true;
    this.#calls.client.leaseClient
      .leaseKeepAlive()
      .then((stream) => {
        this.#opening = false;
        if (this.lost) {
          stream.end();
          return;
        }
        this.#stream = stream;
        stream.on('data', (response) => this.#onResponse(stream, response));
        stream.on('error', () => this.#onStreamEnd(stream));
        stream.on('end', () => this.#onStreamEnd(stream));
        this.#send(stream);
      })
      .catch(() => {
        this.#opening = false;
        this.#retrySoon();
      });
  }

  #send(stream: KeepAliveStream): void {
    try {
      this.#pending.push(Date.now());
      stream.write({ ID: this.leaseId });
    } catch {
      this.#onStreamEnd(stream);
    }
  }

  #onResponse(stream: KeepAliveStream, response: ILeaseKeepAliveResponse): void {
    if (stream !== this.#stream) return;
    const sentAt = this.#pending.shift();
    if (response.TTL === '0' || Number(response.TTL) <= 0) {
      this.markLost(
        new BackendUnavailableError(`etcd session lease ${this.leaseId} expired in etcd`),
      );
      return;
    }
    if (sentAt === undefined) return;
    this.#calls.answered();
    if (sentAt > this.#lastOkSentAt) {
      this.#lastOkSentAt = sentAt;
      this.#armDeadline();
      this.#emit({ type: 'kept-alive', leaseId: this.leaseId, deadline: this.deadline });
    }
  }

  #onStreamEnd(stream: KeepAliveStream): void {
    if (stream !== this.#stream) return;
    this.#dropStream();
    this.#retrySoon();
  }

  /** Try again well before the next interval: the deadline is what ends the session. */
  #retrySoon(): void {
    if (this.lost || this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(
      () => {
        this.#retryTimer = undefined;
        this.#keepAlive();
      },
      Math.min(200, this.#intervalMs),
    );
    this.#retryTimer.unref?.();
  }

  #dropStream(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#pending = [];
    if (stream) {
      try {
        stream.end();
      } catch {
        // Already closed.
      }
    }
  }

  #emit(event: Parameters<NonNullable<ResolvedEtcdOptions['onSessionEvent']>>[0]): void {
    try {
      this.#options.onSessionEvent?.(event);
    } catch {
      // An observer's exception must not break the keep-alive loop.
    }
  }
}
