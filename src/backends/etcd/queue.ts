/**
 * Taking a lock: etcd's mutex recipe.
 *
 * - Acquire: one txn. If the lock's directory is empty it puts our queue entry under the session's
 *   lease and we hold the lock. Otherwise it puts the entry anyway and reads it back with the
 *   entries ahead of it (by create revision); we then wait, by watch, for the deletion of the
 *   entries `turn.ts` names: waiters are served in create-revision order, and each release wakes
 *   at most two waiters, never the whole queue. (A key not known to be contended is first tried
 *   with a txn that only puts if empty, which is cheaper to send; finding it taken costs one more
 *   txn then.) Watchers of the entries ahead are kept a while and reused (`predecessor.ts`).
 * - Try-acquire: one txn that puts only if the directory is empty, else reads the holder.
 * - Fence: the create revision of the holder's entry (etcd revisions only grow).
 *
 * Shared requests (readers, semaphore permits) go to `shared-queue.ts`; an exclusive one waits
 * here for the entries ahead of it whatever their kind, as a writer of etcd's RWMutex does.
 */
import type { IKeyValue, Watcher } from 'etcd3';
import type {
  AcquireRequest,
  AcquireResult,
  OperationOptions,
  QueuedAcquireOptions,
} from '../../core/backend.js';
import { BackendUnavailableError } from '../../core/errors.js';
import { EXCLUSIVE, type Claim } from '../../core/kinds.js';
import type { EtcdCalls } from './calls.js';
import type { DirKeysCache } from './dir-keys.js';
import { entryValue, readEntry, type Entry } from './entry.js';
import type { Granted, Holdings } from './holdings.js';
import type { KeyLayout } from './keys.js';
import type { ResolvedEtcdOptions } from './options.js';
import { firstGone, PredecessorWatchers, type Gone } from './predecessor.js';
import type { AheadView, QueueReads } from './reads.js';
import type { EtcdSession } from './session.js';
import type { SessionPool } from './sessions.js';
import { SharedQueue } from './shared-queue.js';
import { turnOf } from './turn.js';

/** How many keys are remembered as contended. */
const CONTENDED_SIZE = 1024;
/** How many watchers are kept for reuse (often two per lock this process waits on). */
const WATCHERS_KEPT = 16;

/** What the queue works with (the backend's other rooms). */
export interface QueueParts {
  readonly calls: EtcdCalls;
  readonly options: ResolvedEtcdOptions;
  readonly layout: KeyLayout;
  readonly dirs: DirKeysCache;
  readonly reads: QueueReads;
  readonly sessions: SessionPool;
  readonly holdings: Holdings;
}

/** The acquire side of one backend. */
export class LockQueue {
  readonly #parts: QueueParts;
  readonly #watchers: PredecessorWatchers;
  /**
   * Lock directories whose last queued acquire found them taken: their next acquire sends the
   * enqueue txn at once. Others first try the short txn (no `failure` branch to encode or run).
   */
  readonly #contended = new Set<string>();
  #anchor: Watcher | undefined;
  /** Readers and semaphore permits (`shared-queue.ts`). */
  readonly #shared: SharedQueue;

  constructor(parts: QueueParts) {
    this.#parts = parts;
    this.#watchers = new PredecessorWatchers(
      parts.calls.client,
      WATCHERS_KEPT,
      parts.options.recheckMs,
    );
    this.#shared = new SharedQueue({
      ...parts,
      newEntry: (session, dir, token, claim) => this.#newEntry(session, dir, token, claim),
      put: (entry) => this.#put(entry),
      firstGone: (watch, seen, session, signal) => this.#firstGone(watch, seen, session, signal),
      anchorWatchStream: () => this.#anchorWatchStream(),
    });
  }

  async tryAcquire(request: AcquireRequest, options: OperationOptions): Promise<AcquireResult> {
    if (request.mode === 'shared') return this.#shared.tryAcquire(request, options);
    const { calls, layout, dirs, holdings, sessions } = this.#parts;
    const dir = layout.lockDir(request.key);
    const keys = dirs.get(dir);
    for (let sessionAttempt = 1; ; sessionAttempt += 1) {
      calls.throwIfClosed();
      // Before a session grant this may wait for: the lease's local deadline counts from here.
      const sentAt = Date.now();
      const session = await sessions.forTtl(request.ttlMs);
      const entry = this.#newEntry(session, dir, request.token);
      let inFlight: Promise<unknown> | undefined;
      let response;
      try {
        // Put our entry only if the lock's directory is empty. One write, nothing left queued.
        response = await calls.run(
          'tryAcquire',
          (callOptions) =>
            calls.client.kv.txn(
              {
                compare: [keys.isEmpty],
                success: [this.#put(entry)],
                failure: [{ request_range: keys.oldest }],
              },
              callOptions,
            ),
          { session, signal: options.signal, inFlight: (late) => (inFlight = late) },
        );
      } catch (error) {
        if (session.lost) {
          if (sessionAttempt < 2 && !options.signal?.aborted) continue;
          throw error;
        }
        // The put may have gone through (a lost answer, an abort mid-flight): take it back.
        await holdings.abandon(entry, inFlight);
        throw error;
      }
      let revision: string;
      if (response.succeeded) {
        revision = response.header.revision;
      } else {
        const first = response.responses[0]?.response_range.kvs[0];
        if (first && !this.#parts.reads.isOwn(dir, first)) {
          // Only a nested key's entries are in the way: take our place and look.
          return this.#tryAmongNested(entry, request.ttlMs, options);
        }
        // A retried txn whose first attempt got through finds its own entry in front.
        if (!first || !this.#isEntry(first, entry)) {
          entry.session.freeSlot(dir, entry.slot);
          return { acquired: false };
        }
        revision = first.create_revision;
      }
      if (options.signal?.aborted) {
        await holdings.removeEntry(entry, revision);
        throw options.signal.reason;
      }
      return holdings.hold(entry, revision, sentAt, request.ttlMs);
    }
  }

  /**
   * Try-acquire where the directory holds entries of nested keys: put our entry, then hold if no
   * own entry is ahead of it, else take it back (as Go's `TryLock` does).
   */
  async #tryAmongNested(
    entry: Entry,
    ttlMs: number,
    options: OperationOptions,
  ): Promise<AcquireResult> {
    const { calls, reads, holdings } = this.#parts;
    const sentAt = Date.now();
    let inFlight: Promise<unknown> | undefined;
    let revision: string | undefined;
    try {
      const put = await calls.run(
        'tryAcquire',
        (callOptions) => calls.client.kv.txn({ success: [this.#put(entry)] }, callOptions),
        { session: entry.session, signal: options.signal, inFlight: (late) => (inFlight = late) },
      );
      revision = put.header.revision;
      const view = await reads.ahead(entry.dir, revision, {
        session: entry.session,
        signal: options.signal,
        serializable: false,
      });
      if (view.own && turnOf(view.ahead).holds) {
        return holdings.hold(entry, revision, sentAt, ttlMs);
      }
      await holdings.removeEntry(entry, revision);
      return { acquired: false };
    } catch (error) {
      if (revision !== undefined) await holdings.removeEntry(entry, revision);
      else await holdings.abandon(entry, inFlight);
      throw error;
    }
  }

  async acquire(request: AcquireRequest, options: QueuedAcquireOptions): Promise<Granted> {
    const { calls, sessions } = this.#parts;
    // `options.signal` is not read on the uncontended path: the core's is built on first read
    // (a controller and a timer); `onAbort` tells of an abort meanwhile. A grant that races an
    // abort is given back by the core.
    for (let sessionAttempt = 1; ; sessionAttempt += 1) {
      calls.throwIfClosed();
      if (sessionAttempt > 1) options.signal.throwIfAborted();
      // Before a session grant this may wait for: the lease's local deadline counts from here.
      const requestedAt = Date.now();
      const session = await sessions.forTtl(request.ttlMs);
      try {
        return await this.#enqueueAndWait(request, session, options, requestedAt);
      } catch (error) {
        // A wait ended by a closing lock manager settles only once this backend has closed, so
        // that the caller sees `close()` resolve no earlier than its pending acquires reject.
        const closing = calls.closing;
        if (closing.aborted) await this.#closed;
        options.signal.throwIfAborted();
        if (closing.aborted) throw closing.reason;
        // Our session died while we queued: our entry went with it; queue again in a new one.
        if (session.lost && sessionAttempt < 3) continue;
        throw error;
      }
    }
  }

  /** Resolves once the backend has closed (set by the backend). */
  #closed: Promise<void> | undefined;

  /** Tell the queue how to wait for the backend's close (see {@link LockQueue.acquire}). */
  closedBy(closed: Promise<void>): void {
    this.#closed = closed;
  }

  async #enqueueAndWait(
    request: AcquireRequest,
    session: EtcdSession,
    options: QueuedAcquireOptions,
    requestedAt: number,
  ): Promise<Granted> {
    if (request.mode === 'shared') {
      return this.#shared.enqueueAndWait(request, session, options, requestedAt);
    }
    const { calls, layout, dirs, reads, holdings } = this.#parts;
    const dir = layout.lockDir(request.key);
    const keys = dirs.get(dir);
    const entry = this.#newEntry(session, dir, request.token);
    let revision: string | undefined;
    let inFlight: Promise<unknown> | undefined;
    try {
      let sentAt = requestedAt;
      const put = this.#put(entry);
      const callOptions = {
        session,
        lazySignal: options,
        closable: true,
        tries: Infinity,
        inFlight: (late: Promise<unknown>) => (inFlight = late),
      };
      if (!this.#contended.has(dir)) {
        // The common, uncontended case: one write if the directory is empty, and a txn with
        // nothing else to encode or run. A taken lock costs one more call (the one below), only
        // on the key's first contention. (A retry whose first attempt got through fails here too:
        // the enqueue txn below then finds our entry in front.)
        const response = await calls.run(
          'acquire',
          (deadline) => calls.client.kv.txn({ compare: [keys.isEmpty], success: [put] }, deadline),
          callOptions,
        );
        if (response.succeeded) {
          revision = response.header.revision;
          return holdings.hold(entry, revision, sentAt, request.ttlMs);
        }
      }
      // One write: put our entry whether or not the directory is empty, and read it back with
      // the entries ahead. Retrying is safe: a put on our own (reserved) entry name keeps its
      // create revision, so a retry after a lost answer finds our place in line.
      const response = await calls.run(
        'acquire',
        (deadline) =>
          calls.client.kv.txn(
            {
              compare: [keys.isEmpty],
              success: [put],
              failure: [
                put,
                { request_range: { key: entry.raw, keys_only: true } },
                { request_range: keys.newestThree },
              ],
            },
            deadline,
          ),
        callOptions,
      );
      if (response.succeeded) {
        this.#contended.delete(dir);
        revision = response.header.revision;
        return holdings.hold(entry, revision, sentAt, request.ttlMs);
      }
      this.#markContended(dir);
      const mine = response.responses[1]?.response_range.kvs[0];
      if (!mine) throw new BackendUnavailableError('etcd queue entry vanished; retry');
      revision = mine.create_revision;
      // In line: from here on a failure happened mid-wait, and the core retries it.
      options.onQueued?.();
      // Contended: waiting takes far longer than building the caller's signal.
      const signal = options.signal;
      const waitOptions = { session, signal, closable: true, tries: Infinity };
      let view: AheadView | undefined;
      if (revision === response.header.revision) {
        view = reads.viewFrom(dir, revision, response.responses[2]!.response_range);
      }
      if (!view) {
        // Written by an earlier attempt whose answer was lost (newer entries may follow ours), or
        // nested keys' entries crowd the range: read the entries ahead of ours alone.
        sentAt = Date.now();
        view = await reads.ahead(dir, revision, waitOptions);
      }
      for (let stale = false; ;) {
        this.#throwIfAborted(signal);
        if (!view.own && !stale) {
          // Maybe a member that has not applied our put yet: ask again through the leader.
          stale = true;
          view = await reads.ahead(dir, revision, { ...waitOptions, serializable: false });
          continue;
        }
        stale = false;
        if (!view.own) {
          // Deleted under us: the session expired, or an operator force-released the key.
          throw new BackendUnavailableError(`etcd queue entry of "${request.key}" was removed`);
        }
        const turn = turnOf(view.ahead);
        if (turn.holds) return holdings.hold(entry, revision, sentAt, request.ttlMs);
        const gone = await this.#firstGone(turn.watch, view.revision, session, signal);
        sentAt = Date.now();
        if (gone.index >= 0 && gone.index < turn.grants && !session.lost) {
          // The holder's entry is gone, so ours is the oldest: the handoff needs no read. (Our
          // entry could only have gone with the session, checked just now, or by an operator's
          // forceRelease, which a holder learns of at its next extend either way.)
          return holdings.hold(entry, revision, sentAt, request.ttlMs);
        }
        view = await reads.ahead(dir, revision, waitOptions);
        if (view.revision < gone.revision) {
          // A member that has not applied the delete we saw yet still shows that entry, and we
          // would wait on it again, find it gone at once, and read again: ask through the leader.
          view = await reads.ahead(dir, revision, { ...waitOptions, serializable: false });
        }
      }
    } catch (error) {
      // Leave nothing behind: a waiter that gives up (deadline, abort, failure) leaves the queue.
      if (!session.lost) {
        if (revision !== undefined) await holdings.removeEntry(entry, revision);
        else await holdings.abandon(entry, inFlight);
      }
      throw error;
    }
  }

  /** Remember that `dir` was found taken (bounded: the oldest entry makes room). */
  #markContended(dir: string): void {
    if (this.#contended.has(dir)) return;
    if (this.#contended.size >= CONTENDED_SIZE) {
      this.#contended.delete(this.#contended.values().next().value!);
    }
    this.#contended.add(dir);
  }

  /** Reject with the caller's reason, or the backend's if it is closing. */
  #throwIfAborted(signal: AbortSignal): void {
    signal.throwIfAborted();
    this.#parts.calls.closing.throwIfAborted();
  }

  #firstGone(
    ahead: readonly IKeyValue[],
    seenRevision: bigint,
    session: EtcdSession,
    signal: AbortSignal,
  ): Promise<Gone> {
    const { calls, dirs, options } = this.#parts;
    this.#anchorWatchStream();
    return firstGone({
      client: calls.client,
      watchers: this.#watchers,
      entries: ahead.map((kv) => ({ kv, name: dirs.name(kv.key) })),
      seenRevision,
      session,
      signal,
      closing: calls.closing,
      recheckMs: options.recheckMs,
      callOptions: () => calls.callOptions(),
    });
  }

  /**
   * Keep one idle watcher attached for the backend's lifetime. `etcd3` tears its watch stream
   * down whenever its last watcher is cancelled, and a watcher attached while that teardown is
   * under way is only re-attached after a reconnect backoff: with one waiter per client (the
   * usual case) that would happen at every handoff.
   */
  #anchorWatchStream(): void {
    if (this.#anchor || this.#parts.calls.closing.aborted) return;
    const anchor = this.#parts.calls.client
      .watch()
      .key(this.#parts.layout.anchor())
      .only('delete')
      .watcher();
    anchor.on('error', () => undefined);
    this.#anchor = anchor;
  }

  /** Cancel the watchers (resolves once etcd answered, or never: the caller bounds the wait). */
  async close(): Promise<void> {
    await Promise.all([this.#watchers.close(), this.#anchor?.cancel().catch(() => undefined)]);
  }

  #newEntry(session: EtcdSession, dir: string, token: string, claim: Claim = EXCLUSIVE): Entry {
    const { layout, dirs } = this.#parts;
    const slot = session.reserveSlot(dir);
    const name = layout.entry(dir, session.leaseId, slot);
    return { dir, name, raw: dirs.entryRaw(dir, name), slot, token, claim, session };
  }

  #put(entry: Entry) {
    return {
      request_put: {
        key: entry.raw,
        value: entryValue(entry.token, entry.claim),
        lease: entry.session.leaseId,
      },
    };
  }

  /** True when `kv` is `entry` as we wrote it (our name and token, under our session). */
  #isEntry(kv: IKeyValue, entry: Entry): boolean {
    return (
      this.#parts.dirs.name(kv.key) === entry.name &&
      readEntry(kv).token === entry.token &&
      kv.lease === entry.session.leaseId
    );
  }
}
