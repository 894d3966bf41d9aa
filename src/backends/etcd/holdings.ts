/**
 * The locks this backend holds, and the reaper: a live holder that stops extending is reaped at
 * the lock's TTL (local timer, guarded delete), never earlier than the core's local deadline for
 * the lease, as a store-side TTL would. etcd frees entries by itself only when their session's
 * lease expires (the process died or lost etcd).
 *
 * Also how entries leave etcd when no caller waits for the answer: a guarded delete retried in
 * the background while the session lives (a stuck entry would block the queue behind it).
 */
import type { AcquireResult } from '../../core/backend.js';
import { sleep } from '../../core/abort.js';
import type { EtcdCalls } from './calls.js';
import type { Entry } from './entry.js';
import type { ResolvedEtcdOptions } from './options.js';
import type { EtcdSession } from './session.js';

/** The longest pause between background retries of a delete. */
const MAX_BACKGROUND_DELAY_MS = 2_000;

export type Granted = AcquireResult & { readonly acquired: true };

/** A lock this backend holds: its entry, granted create revision, and reaper timer. */
export interface Holding {
  readonly entry: Entry;
  readonly revision: string;
  /** Local epoch ms at which the backend deletes the entry unless extended first. */
  reapAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  reaping: Promise<void> | undefined;
  /** Released, reaped, or its session ended: no longer ours to extend or reap. */
  done: boolean;
}

/** Index of holdings: one lock directory and one token. */
function refOf(dir: string, token: string): string {
  // A newline never ends a directory (they end with `/`), so dir + token cannot be ambiguous.
  return `${dir}\n${token}`;
}

/** The holdings of one backend. */
export class Holdings {
  readonly #calls: EtcdCalls;
  readonly #options: ResolvedEtcdOptions;
  readonly #byRef = new Map<string, Holding>();

  constructor(calls: EtcdCalls, options: ResolvedEtcdOptions) {
    this.#calls = calls;
    this.#options = options;
  }

  /** The holding of `token` on `dir`, if this backend has one. */
  get(dir: string, token: string): Holding | undefined {
    return this.#byRef.get(refOf(dir, token));
  }

  /** Record the grant of `entry` at `revision` and report it as the core expects. */
  hold(entry: Entry, revision: string, startedAt: number, ttlMs: number): Granted {
    const holding: Holding = {
      entry,
      revision,
      reapAt: startedAt + ttlMs,
      timer: undefined,
      reaping: undefined,
      done: false,
    };
    // A second holding under the same token (a caller reusing tokens) keeps its own reaper.
    this.#byRef.set(refOf(entry.dir, entry.token), holding);
    this.armReaper(holding);
    const { session } = entry;
    // One signal per session, shared by its holdings (the core stops listening when a lease
    // settles). Not a LockLostError: the core then reports `unreachable` under the caller's key.
    let lost = session.lostSignal;
    if (session.lost) {
      this.sessionEnded(session);
      // Closed rather than lost: `lostSignal` stays quiet, but this holding is gone already.
      if (!lost.aborted) lost = AbortSignal.abort(session.signal.reason);
    }
    return { acquired: true, fence: BigInt(revision), startedAt, lost };
  }

  /** (Re)start the reaper for `holding.reapAt`. */
  armReaper(holding: Holding): void {
    clearTimeout(holding.timer);
    holding.timer = setTimeout(() => this.#reap(holding), Math.max(0, holding.reapAt - Date.now()));
    holding.timer.unref?.();
  }

  /** The lock's TTL passed without an extend: free it in etcd, as a store-side TTL would. */
  #reap(holding: Holding): void {
    if (holding.done) return;
    this.finish(holding);
    holding.reaping = this.removeEntry(holding.entry, holding.revision).finally(() => {
      holding.reaping = undefined;
    });
  }

  /** The holding is no longer ours to extend or reap. */
  finish(holding: Holding): void {
    holding.done = true;
    clearTimeout(holding.timer);
    holding.timer = undefined;
    const ref = refOf(holding.entry.dir, holding.entry.token);
    if (this.#byRef.get(ref) === holding) this.#byRef.delete(ref);
  }

  /** Finish every holding (the backend closes: its sessions' revocation frees them). */
  finishAll(): void {
    for (const holding of [...this.#byRef.values()]) this.finish(holding);
  }

  /**
   * The session is lost (its local deadline passed without a keep-alive getting through, or etcd
   * said it expired): forget every lock held under it; etcd deletes (or has deleted) their
   * entries. The core hears of the loss through the session's `lostSignal`.
   */
  sessionEnded(session: EtcdSession): void {
    for (const holding of [...this.#byRef.values()]) {
      if (holding.entry.session !== session || holding.done) continue;
      this.finish(holding);
    }
  }

  /**
   * Delete `entry` if it is still the one created at `revision`, then free its slot. Transient
   * failures are retried, then handed to a background loop for as long as the session lives.
   * Never rejects.
   */
  async removeEntry(entry: Entry, revision: string): Promise<void> {
    const { session } = entry;
    const remove = () =>
      this.#calls.run(
        'dequeue',
        (callOptions) =>
          this.#calls.client.kv.txn(
            {
              compare: [
                { key: entry.raw, target: 'Create', result: 'Equal', create_revision: revision },
              ],
              success: [{ request_delete_range: { key: entry.raw } }],
            },
            callOptions,
          ),
        { session },
      );
    // Deleted, or already gone (no one else writes our entry names): the slot is free again.
    const done = () => session.freeSlot(entry.dir, entry.slot);
    try {
      await remove();
      done();
    } catch {
      this.#retryInBackground(session, async () => {
        await remove();
        done();
      });
    }
  }

  /** Keep trying `attempt` while the session lives; its expiry removes the entry otherwise. */
  #retryInBackground(session: EtcdSession, attempt: () => Promise<void>): void {
    const loop = async () => {
      for (let n = 1; !session.lost && !session.signal.aborted; n += 1) {
        await sleep(Math.min(MAX_BACKGROUND_DELAY_MS, this.#options.retryDelayMs * 2 ** n));
        try {
          await attempt();
          return;
        } catch {
          // Keep trying while the session lives.
        }
      }
    };
    loop().catch(() => undefined);
  }

  /**
   * Take back an entry whose put may or may not have gone through (its answer was lost, or the
   * caller aborted while it was in flight): once the request in flight settles, delete the entry
   * if it exists. Never rejects.
   */
  async abandon(entry: Entry, inFlight: Promise<unknown> | undefined): Promise<void> {
    try {
      await inFlight?.catch(() => undefined);
      const { kvs } = await this.#calls.run(
        'dequeue',
        (callOptions) => this.#calls.client.kv.range({ key: entry.raw }, callOptions),
        { session: entry.session },
      );
      const kv = kvs[0];
      if (kv) await this.removeEntry(entry, kv.create_revision);
      else entry.session.freeSlot(entry.dir, entry.slot);
    } catch {
      // Unreachable etcd: the entry goes when the session does (its slot stays reserved).
    }
  }
}
