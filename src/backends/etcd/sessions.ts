/**
 * The backend's sessions: one etcd lease per distinct lease TTL in use, granted on first use.
 *
 * Why per TTL: the lease an entry lives under is what frees the lock when its holder dies, so a
 * lock taken with `ttlMs: 2000` must not live under a 10 s lease. Each holding's lease has the
 * request's `ttlMs` rounded up to whole seconds (etcd's lease granularity; etcd raises it to its
 * minimum TTL, 2 s with default election settings), or `sessionTtlMs` where that is shorter. All
 * requests of one TTL share its session: one write to acquire, one keep-alive per TTL/3 for all.
 * A session left without entries for a minute is revoked (see `session.ts`).
 */
import type { EtcdCalls } from './calls.js';
import type { ResolvedEtcdOptions } from './options.js';
import { EtcdSession } from './session.js';

/** The whole seconds of the lease a request with `ttlMs` is put under. */
export function leaseSeconds(ttlMs: number, options: ResolvedEtcdOptions): number {
  return Math.max(1, Math.ceil(Math.min(ttlMs, options.sessionTtlMs) / 1_000));
}

/** The live sessions of one backend, by lease TTL in seconds. */
export class SessionPool {
  readonly #calls: EtcdCalls;
  readonly #options: ResolvedEtcdOptions;
  readonly #bySeconds = new Map<number, Promise<EtcdSession>>();
  /** Told of each new session, to follow its loss. */
  readonly #onGranted: (session: EtcdSession) => void;
  #closed = false;

  constructor(
    calls: EtcdCalls,
    options: ResolvedEtcdOptions,
    onGranted: (session: EtcdSession) => void,
  ) {
    this.#calls = calls;
    this.#options = options;
    this.#onGranted = onGranted;
  }

  /** The live session for requests with `ttlMs`, granting one (once, however many ask) if needed. */
  async forTtl(ttlMs: number): Promise<EtcdSession> {
    const seconds = leaseSeconds(ttlMs, this.#options);
    const known = this.#bySeconds.get(seconds);
    if (known) {
      const existing = await known.catch(() => undefined);
      if (existing && !existing.lost) return existing;
    }
    this.#calls.throwIfClosed();
    // Replace a lost or failed session, unless a concurrent caller already did.
    let granting = this.#bySeconds.get(seconds);
    if (granting === known) {
      granting = this.#grant(seconds);
      this.#bySeconds.set(seconds, granting);
    }
    const session = await granting!;
    this.#calls.throwIfClosed();
    return session;
  }

  #grant(seconds: number): Promise<EtcdSession> {
    const granting = EtcdSession.grant(this.#calls, seconds, this.#options, (idle) =>
      this.#retire(seconds, idle),
    );
    granting.then(
      (session) => {
        this.#onGranted(session);
        if (this.#closed) session.close(Date.now()).catch(() => undefined);
      },
      () => {
        if (this.#bySeconds.get(seconds) === granting) this.#bySeconds.delete(seconds);
      },
    );
    return granting;
  }

  /** An idle session: forget it and revoke its lease. */
  #retire(seconds: number, session: EtcdSession): void {
    const current = this.#bySeconds.get(seconds);
    current?.then(
      (live) => {
        if (live === session && this.#bySeconds.get(seconds) === current) {
          this.#bySeconds.delete(seconds);
        }
      },
      () => undefined,
    );
    session.close(Date.now() + this.#options.releaseTimeoutMs).catch(() => undefined);
  }

  /**
   * Revoke every session's lease (deleting every entry of this backend: its locks and queue
   * places), retrying through an outage until `until`. Never rejects.
   */
  async close(until: number): Promise<void> {
    this.#closed = true;
    const sessions = await Promise.all(
      [...this.#bySeconds.values()].map((granting) => granting.catch(() => undefined)),
    );
    this.#bySeconds.clear();
    await Promise.all(sessions.map((session) => session?.close(until)));
  }
}
