/**
 * The etcd lock backend: etcd's mutex recipe over a session lease.
 *
 * - Acquire: one txn. If the lock's directory is empty it puts our queue entry under the session's
 *   lease and we hold the lock. Otherwise it puts the entry anyway and reads it back with its
 *   predecessor (the entry with the next-lower create revision); we then wait for the deletion of
 *   the predecessor (and, until the predecessor holds the lock, of the entry before it, so that
 *   the handoff itself needs no read): waiters are served in create-revision order, and each
 *   release wakes at most two waiters, never the whole queue. (A key not known to be contended is
 *   first tried with a txn that only puts if empty, which is cheaper to send; finding it taken
 *   costs one more txn then.) Watchers of the entries ahead are kept a while and reused, as a
 *   waiter's predecessor is usually the same entry name every round.
 * - Fence: the create revision of the holder's entry (etcd revisions only grow).
 * - Release: one delete of our own entry. Entry names are reserved per request until the entry is
 *   gone, so this can only delete our holding; a release by token without a local record deletes
 *   the holder's entry only if it carries that token, guarded by its create revision.
 * - TTL: etcd frees a session's entries when the session's lease expires (the process died or lost
 *   etcd). A live holder that stops extending is reaped by this backend at the lock's TTL (local
 *   timer, guarded delete), which is never earlier than the core's local deadline for the lease.
 */
import { setMaxListeners } from 'node:events';
import type { Etcd3, IKeyValue, IRangeRequest, IRangeResponse, ITxnResponse, Watcher } from 'etcd3';
import { sleep } from '../../core/abort.js';
import type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  QueuedAcquireOptions,
  ReleaseOutcome,
  Unwatch,
} from '../../core/backend.js';
import { BackendUnavailableError, LockClosedError } from '../../core/errors.js';
import { isLeaseGone, toLockError } from './errors.js';
import { KeyLayout, prefixEnd } from './keys.js';
import type { ResolvedEtcdOptions } from './options.js';
import { firstGone, PredecessorWatchers, type Gone, type WatchedEntry } from './predecessor.js';
import { EtcdSession } from './session.js';
import { pause, raceAbort } from './signals.js';

/** The per-call options we pass to `etcd3` (a gRPC deadline). */
interface CallOptions {
  readonly deadline: number;
}

type Granted = AcquireResult & { readonly acquired: true };

/** One queue entry this backend wrote (or is about to write) for one request. */
interface Entry {
  readonly dir: string;
  /** The etcd key, without the client's namespace. */
  readonly name: string;
  /** The etcd key as stored (under the client's namespace). */
  readonly raw: Buffer;
  readonly slot: number;
  readonly token: string;
  readonly session: EtcdSession;
}

/** A lock this backend holds: its entry, granted create revision, and reaper timer. */
interface Holding {
  readonly entry: Entry;
  readonly revision: string;
  /** Local epoch ms at which the backend deletes the entry unless extended first. */
  reapAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  reaping: Promise<void> | undefined;
  /** Released, reaped, or its session ended: no longer ours to extend or reap. */
  done: boolean;
}

/**
 * The etcd keys and request parts of one lock directory, built once while the lock is in use:
 * building Buffers and request objects per call is a measurable share of an acquire's CPU.
 * (`etcd3` passes request objects through to the encoder unchanged, so sharing them is safe.)
 */
interface DirKeys {
  readonly raw: Buffer;
  /** Compare: the directory has no entries. */
  readonly isEmpty: {
    readonly key: Buffer;
    readonly range_end: Buffer;
    readonly target: 'Create';
    readonly result: 'Equal';
    readonly create_revision: number;
  };
  /** The holder's entry (lowest create revision) and the queue length. */
  readonly oldest: IRangeRequest;
  /**
   * The three newest entries (highest create revisions), keys only: with a `max_create_revision`
   * of ours, our entry, our predecessor and the entry before it.
   */
  readonly newestThree: IRangeRequest;
  /** The last entry name built here (a session's slot 0, almost always) and its raw key. */
  lastEntry: { readonly name: string; readonly raw: Buffer } | undefined;
}

/** How many lock directories keep their {@link DirKeys}, and how many keys are known contended. */
const DIR_CACHE_SIZE = 256;
const CONTENDED_SIZE = 1024;
/** How many watchers are kept for reuse (often two per lock this process waits on). */
const WATCHERS_KEPT = 16;

/** The longest pause between retries of a call that must eventually go through. */
const MAX_RETRY_DELAY_MS = 2_000;

const CAPABILITIES: BackendCapabilities = Object.freeze({
  fencing: true,
  notify: true,
  fifo: true,
  crossProcess: true,
});

/** Index of holdings: one lock directory and one token. */
function refOf(dir: string, token: string): string {
  // Directories are percent-encoded, so they hold no newline.
  return `${dir}\n${token}`;
}

/** A `LockBackend` over etcd. Created by `etcdBackend()`. */
export class EtcdBackend implements LockBackend {
  readonly name = 'etcd';
  readonly capabilities = CAPABILITIES;

  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #options: ResolvedEtcdOptions;
  readonly #keys: KeyLayout;
  readonly #holdings = new Map<string, Holding>();
  readonly #dirs = new Map<string, DirKeys>();
  /**
   * Lock directories whose last queued acquire found them taken: their next acquire sends the
   * enqueue txn at once. Others first try the short txn (no `failure` branch to encode or run).
   */
  readonly #contended = new Set<string>();
  readonly #closing = new AbortController();
  /**
   * Rejects each call in flight for a queued acquire when the backend closes: cheaper than a
   * listener per call on `#closing`.
   */
  readonly #onClose = new Set<(reason: unknown) => void>();
  #closed: Promise<void> | undefined;
  #session: Promise<EtcdSession> | undefined;
  #anchor: Watcher | undefined;
  readonly #watchers: PredecessorWatchers;

  constructor(client: Etcd3, ownsClient: boolean, options: ResolvedEtcdOptions) {
    this.#client = client;
    this.#ownsClient = ownsClient;
    this.#options = options;
    this.#keys = new KeyLayout(options.namespace);
    this.#watchers = new PredecessorWatchers(client, WATCHERS_KEPT, options.recheckMs);
    // Every pending acquire listens for close(): many at once is expected, not a leak.
    setMaxListeners(0, this.#closing.signal);
  }

  async tryAcquire(
    request: AcquireRequest,
    options: OperationOptions = {},
  ): Promise<AcquireResult> {
    const dir = this.#keys.lockDir(request.key);
    for (let sessionAttempt = 1; ; sessionAttempt += 1) {
      this.#throwIfClosed();
      const session = await this.#currentSession();
      const entry = this.#newEntry(session, dir, request.token);
      const sentAt = Date.now();
      // Put our entry only if the lock's directory is empty. One write, and nothing left queued.
      const txn = (callOptions: CallOptions) =>
        this.#client.kv.txn(
          {
            compare: [this.#isEmpty(dir)],
            success: [this.#putEntry(entry)],
            failure: [{ request_range: this.#oldest(dir) }],
          },
          callOptions,
        );
      let response: ITxnResponse;
      let inFlight: Promise<unknown> | undefined;
      try {
        response = await this.#call('tryAcquire', txn, {
          session,
          signal: options.signal,
          inFlight: (late) => (inFlight = late),
        });
      } catch (error) {
        if (session.lost) {
          if (sessionAttempt < 2 && !options.signal?.aborted) continue;
          throw error;
        }
        // The put may have gone through (a lost answer, an abort mid-flight): take it back.
        await this.#abandon(entry, inFlight);
        throw error;
      }
      let revision: string;
      if (response.succeeded) {
        revision = response.header.revision;
      } else {
        // A retried txn whose first attempt got through finds its own entry in front.
        const first = response.responses[0]?.response_range.kvs[0];
        if (!first || !this.#isEntry(first, entry)) {
          entry.session.freeSlot(dir, entry.slot);
          return { acquired: false };
        }
        revision = first.create_revision;
      }
      if (options.signal?.aborted) {
        await this.#removeEntry(entry, revision);
        throw options.signal.reason;
      }
      return this.#hold(entry, revision, sentAt, request.ttlMs);
    }
  }

  async acquire(request: AcquireRequest, options: QueuedAcquireOptions): Promise<Granted> {
    // `options.signal` is not read on the uncontended path: the core's is built on first read
    // (a controller and a timer); `onAbort` tells of an abort meanwhile. A grant that races an
    // abort is given back by the core.
    for (let sessionAttempt = 1; ; sessionAttempt += 1) {
      this.#throwIfClosed();
      if (sessionAttempt > 1) options.signal.throwIfAborted();
      const session = await this.#currentSession();
      try {
        return await this.#enqueueAndWait(request, session, options);
      } catch (error) {
        // A wait ended by a closing lock manager settles only once this backend has closed, so
        // that the caller sees `close()` resolve no earlier than its pending acquires reject.
        const closing = this.#closing.signal;
        if (closing.aborted) await this.#closed;
        options.signal.throwIfAborted();
        if (closing.aborted) throw closing.reason;
        // Our session died while we queued: our entry went with it; queue again in a new one.
        if (session.lost && sessionAttempt < 3) continue;
        throw error;
      }
    }
  }

  async #enqueueAndWait(
    request: AcquireRequest,
    session: EtcdSession,
    options: QueuedAcquireOptions,
  ): Promise<Granted> {
    const dir = this.#keys.lockDir(request.key);
    const keys = this.#dirKeys(dir);
    const entry = this.#newEntry(session, dir, request.token);
    let revision: string | undefined;
    let inFlight: Promise<unknown> | undefined;
    try {
      let sentAt = Date.now();
      const put = this.#putEntry(entry);
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
        const response = await this.#call(
          'acquire',
          (deadline) => this.#client.kv.txn({ compare: [keys.isEmpty], success: [put] }, deadline),
          callOptions,
        );
        if (response.succeeded) {
          revision = response.header.revision;
          return this.#hold(entry, revision, sentAt, request.ttlMs);
        }
      }
      // One write: put our entry whether or not the directory is empty, and read it back with
      // its predecessor. Retrying is safe: a put on our own (reserved) entry name keeps its
      // create revision, so a retry after a lost answer finds our place in line.
      const response = await this.#call(
        'acquire',
        (deadline) =>
          this.#client.kv.txn(
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
        return this.#hold(entry, revision, sentAt, request.ttlMs);
      }
      this.#markContended(dir);
      const mine = response.responses[1]?.response_range.kvs[0];
      if (!mine) throw new BackendUnavailableError('etcd queue entry vanished; retry');
      revision = mine.create_revision;
      // Contended: waiting takes far longer than building the caller's signal.
      const signal = options.signal;
      let queue: IRangeResponse;
      if (revision === response.header.revision) {
        queue = response.responses[2]!.response_range;
      } else {
        // Written by an earlier attempt whose answer was lost: newer entries may follow ours.
        sentAt = Date.now();
        queue = await this.#waitingRange(dir, revision, session, signal);
      }
      for (let stale = false; ;) {
        this.#throwIfAborted(signal);
        const [own, predecessor, beforePredecessor] = queue.kvs;
        if ((!own || own.create_revision !== revision) && !stale) {
          // Maybe a member that has not applied our put yet: ask again through the leader.
          stale = true;
          queue = await this.#waitingRange(dir, revision, session, signal, false);
          continue;
        }
        stale = false;
        if (!own || own.create_revision !== revision) {
          // Deleted under us: the session expired, or an operator force-released the key.
          throw new BackendUnavailableError(`etcd queue entry of "${request.key}" was removed`);
        }
        if (!predecessor) {
          return this.#hold(entry, revision, sentAt, request.ttlMs);
        }
        // No entry before our predecessor: it holds the lock, and nobody can get in between
        // (newer entries queue behind us). (Not `count`: etcd counts a range before applying
        // `max_create_revision`, so it includes the entries behind us.) Otherwise we also watch
        // the entry before our predecessor: when it goes, we read the queue again while our
        // predecessor holds the lock, not after it let go.
        const predecessorHolds = beforePredecessor === undefined;
        const gone = await this.#firstGone(
          predecessorHolds ? [predecessor] : [predecessor, beforePredecessor],
          BigInt(queue.header.revision),
          session,
          signal,
        );
        sentAt = Date.now();
        if (gone.index === 0 && predecessorHolds && !session.lost) {
          // The holder's entry is gone, so ours is the oldest: the handoff needs no read. (Our
          // entry could only have gone with the session, checked just now, or by an operator's
          // forceRelease, which a holder learns of at its next extend either way.)
          return this.#hold(entry, revision, sentAt, request.ttlMs);
        }
        queue = await this.#waitingRange(dir, revision, session, signal);
        if (BigInt(queue.header.revision) < gone.revision) {
          // A member that has not applied the delete we saw yet still shows that entry, and we
          // would wait on it again, find it gone at once, and read again: ask through the leader.
          queue = await this.#waitingRange(dir, revision, session, signal, false);
        }
      }
    } catch (error) {
      // Leave nothing behind: a waiter that gives up (deadline, abort, failure) leaves the queue.
      if (!session.lost) {
        if (revision !== undefined) await this.#removeEntry(entry, revision);
        else await this.#abandon(entry, inFlight);
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
    this.#closing.signal.throwIfAborted();
  }

  /**
   * Our entry and the one just before it (by create revision), retried while we wait.
   *
   * A serializable read (served by whichever member we reach, without a quorum round) is safe
   * here: any state that holds our entry also holds every older entry that still exists now,
   * because entries older than ours can only be deleted, never created. So "no predecessor" in a
   * possibly stale state that holds our entry means no predecessor now.
   */
  #waitingRange(
    dir: string,
    revision: string,
    session: EtcdSession,
    signal: AbortSignal,
    serializable = true,
  ): Promise<IRangeResponse> {
    return this.#call(
      'acquire (waiting)',
      (callOptions) =>
        this.#client.kv.range(
          {
            ...this.#dirKeys(dir).newestThree,
            max_create_revision: revision,
            keys_only: true,
            serializable,
          },
          callOptions,
        ),
      { session, signal, closable: true, tries: Infinity },
    );
  }

  #firstGone(
    ahead: readonly IKeyValue[],
    seenRevision: bigint,
    session: EtcdSession,
    signal: AbortSignal,
  ): Promise<Gone> {
    this.#anchorWatchStream();
    return firstGone({
      client: this.#client,
      watchers: this.#watchers,
      entries: ahead.map((kv): WatchedEntry => ({ kv, name: this.#name(kv.key) })),
      seenRevision,
      session,
      signal,
      closing: this.#closing.signal,
      recheckMs: this.#options.recheckMs,
      callOptions: () => this.#deadline(),
    });
  }

  /**
   * Keep one idle watcher attached for the backend's lifetime. `etcd3` tears its watch stream
   * down whenever its last watcher is cancelled, and a watcher attached while that teardown is
   * under way is only re-attached after a reconnect backoff: with one waiter per client (the
   * usual case) that would happen at every handoff.
   */
  #anchorWatchStream(): void {
    if (this.#anchor || this.#closing.signal.aborted) return;
    const anchor = this.#client.watch().key(this.#keys.anchor()).only('delete').watcher();
    anchor.on('error', () => undefined);
    this.#anchor = anchor;
  }

  async extend(
    lease: LeaseRef,
    ttlMs: number,
    options: OperationOptions = {},
  ): Promise<ExtendResult> {
    this.#throwIfClosed();
    const dir = this.#keys.lockDir(lease.key);
    const holding = this.#holdings.get(refOf(dir, lease.token));
    if (holding?.reaping) await holding.reaping;
    const sentAt = Date.now();
    // The reaper must not fire while the extend is in flight.
    if (holding && !holding.done) {
      holding.reapAt = Math.max(holding.reapAt, sentAt + ttlMs);
      this.#armReaper(holding);
    }
    const owner = await this.#oldestEntry(dir, options.signal);
    if (!owner || owner.value.toString() !== lease.token) {
      return { extended: false, reason: owner ? 'not-owner' : 'expired' };
    }
    if (!holding) {
      // Held through another backend instance, whose reaper we cannot postpone: vouch for no time.
      return { extended: true, validityMs: 0 };
    }
    if (
      holding.done ||
      this.#name(owner.key) !== holding.entry.name ||
      owner.create_revision !== holding.revision
    ) {
      return { extended: false, reason: 'expired' };
    }
    holding.reapAt = sentAt + ttlMs;
    this.#armReaper(holding);
    return { extended: true };
  }

  async release(lease: LeaseRef, options: OperationOptions = {}): Promise<ReleaseOutcome> {
    this.#throwIfClosed();
    const dir = this.#keys.lockDir(lease.key);
    const holding = this.#holdings.get(refOf(dir, lease.token));
    if (holding) {
      const wasDone = holding.done;
      this.#finish(holding);
      if (holding.reaping) await holding.reaping;
      if (!wasDone && !holding.entry.session.lost) return this.#releaseHeld(holding, options);
    }
    // Release by token without a live local record: only the current holder's entry may go.
    for (let attempt = 1; ; attempt += 1) {
      const owner = await this.#oldestEntry(dir, options.signal);
      if (!owner) return 'expired';
      if (owner.value.toString() !== lease.token) return 'not-owner';
      const response = await this.#call(
        'release',
        (callOptions) => this.#client.kv.txn(this.#deleteIfRevision(owner), callOptions),
        { signal: options.signal },
      );
      if (response.succeeded) return 'released';
      if (attempt >= 3) return 'expired';
    }
  }

  /**
   * Release a holding of this backend: one plain delete of our entry. No compare is needed: the
   * entry's name is reserved for this holding until it is gone (see `EtcdSession.reserveSlot`),
   * so deleting the name can only delete this holding, never someone else's.
   */
  async #releaseHeld(holding: Holding, options: OperationOptions): Promise<ReleaseOutcome> {
    const { entry, revision } = holding;
    let deleted: number;
    try {
      const response = await this.#call(
        'release',
        (callOptions) => this.#client.kv.deleteRange({ key: entry.raw }, callOptions),
        { signal: options.signal, session: entry.session },
      );
      deleted = Number(response.deleted);
    } catch (error) {
      // Keep trying in the background: an entry left behind would block the lock until the
      // session ends. The caller still learns that this call failed.
      this.#removeEntry(entry, revision).catch(() => undefined);
      throw error;
    }
    // Either way our entry is gone now: its name may be reused.
    entry.session.freeSlot(entry.dir, entry.slot);
    if (deleted > 0) return 'released';
    // Already gone (force-released, or the session expired): say who holds the key now.
    const owner = await this.#oldestEntry(entry.dir, options.signal);
    return owner ? 'not-owner' : 'expired';
  }

  async inspect(key: string, options: OperationOptions = {}): Promise<LockInfo | null> {
    this.#throwIfClosed();
    const dir = this.#keys.lockDir(key);
    const response = await this.#call(
      'inspect',
      (callOptions) => this.#client.kv.range(this.#oldest(dir), callOptions),
      { signal: options.signal },
    );
    const owner = response.kvs[0];
    if (!owner) return null;
    return this.#info(owner, key, dir, Number(response.count) - 1);
  }

  async list(prefix: string, options: OperationOptions = {}): Promise<LockInfo[]> {
    this.#throwIfClosed();
    const start = this.#raw(this.#keys.listPrefix(prefix));
    const { kvs } = await this.#call(
      'list',
      (callOptions) =>
        this.#client.kv.range(
          {
            key: start,
            range_end: prefixEnd(start),
            sort_target: 'Create',
            sort_order: 'Ascend',
          },
          callOptions,
        ),
      { signal: options.signal },
    );
    // Oldest entry first, so the first entry seen for each key is its holder.
    const owners = new Map<string, { kv: IKeyValue; entries: number }>();
    for (const kv of kvs) {
      const key = this.#keys.lockKeyOf(this.#name(kv.key));
      if (key === undefined) continue;
      const seen = owners.get(key);
      if (seen) seen.entries += 1;
      else owners.set(key, { kv, entries: 1 });
    }
    return [...owners.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, { kv, entries }]) => this.#info(kv, key, this.#keys.lockDir(key), entries - 1));
  }

  async forceRelease(key: string, options: OperationOptions = {}): Promise<boolean> {
    this.#throwIfClosed();
    const dir = this.#keys.lockDir(key);
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      const owner = await this.#oldestEntry(dir, options.signal);
      if (!owner) return false;
      const response = await this.#call(
        'forceRelease',
        (callOptions) => this.#client.kv.txn(this.#deleteIfRevision(owner), callOptions),
        { signal: options.signal },
      );
      if (response.succeeded) {
        const holding = this.#holdings.get(refOf(dir, owner.value.toString()));
        if (holding?.revision === owner.create_revision) {
          this.#finish(holding);
          holding.entry.session.freeSlot(dir, holding.entry.slot);
        }
        return true;
      }
    }
    return false;
  }

  async watch(key: string, onChange: () => void, options: OperationOptions = {}): Promise<Unwatch> {
    this.#throwIfClosed();
    const watcher = this.#client.watch().prefix(this.#keys.lockDir(key)).only('delete').watcher();
    const notify = () => {
      try {
        onChange();
      } catch {
        // The caller's callback must not break the watch stream.
      }
    };
    watcher.on('delete', notify);
    watcher.on('error', notify); // missed events are allowed; let the caller re-check
    const connected = new Promise<void>((resolve) => {
      watcher.once('connected', () => resolve());
      watcher.once('error', () => resolve());
    });
    // Wait (boundedly) for the watch to be in place so that a release right after is not missed.
    await Promise.race([
      connected,
      sleep(this.#options.operationTimeoutMs, options.signal).catch(() => undefined),
    ]);
    return () => watcher.cancel().catch(() => undefined);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const reason = new LockClosedError('etcd backend');
    this.#closing.abort(reason);
    for (const reject of this.#onClose) reject(reason);
    this.#onClose.clear();
    for (const holding of this.#holdings.values()) this.#finish(holding);
    // Bounded: cancelling a watcher waits for etcd's answer, which may never come.
    const bound = new AbortController();
    await Promise.race([
      Promise.all([this.#watchers.close(), this.#anchor?.cancel().catch(() => undefined)]),
      sleep(this.#options.operationTimeoutMs, bound.signal).catch(() => undefined),
    ]);
    bound.abort(); // no timer left to keep the process alive

    const session = await this.#session?.catch(() => undefined);
    // Revoking the session deletes every entry of this backend: its locks and queue places.
    await session?.close().catch(() => undefined);
    if (this.#ownsClient) this.#client.close();
  }

  // ---- sessions, holdings and the reaper ----

  /** The live session, granting a new one (once, however many callers ask) when needed. */
  async #currentSession(): Promise<EtcdSession> {
    this.#throwIfClosed();
    const known = this.#session;
    const existing = await known?.catch(() => undefined);
    if (existing && !existing.lost) return existing;
    // Replace a lost or failed session, unless a concurrent caller already did.
    if (this.#session === known || this.#session === undefined) this.#session = this.#grant();
    const session = await this.#session;
    this.#throwIfClosed();
    return session;
  }

  #grant(): Promise<EtcdSession> {
    const granting = EtcdSession.grant(this.#client, this.#options);
    granting.then(
      (session) => {
        session.signal.addEventListener('abort', () => this.#sessionEnded(session), {
          once: true,
        });
        if (this.#closing.signal.aborted) session.close().catch(() => undefined);
      },
      () => {
        if (this.#session === granting) this.#session = undefined;
      },
    );
    return granting;
  }

  /**
   * The session is lost (its local deadline passed without a keep-alive getting through, or etcd
   * said it expired): signal every lock held under it lost, and forget them; etcd deletes (or has
   * deleted) their entries.
   */
  #sessionEnded(session: EtcdSession): void {
    for (const holding of [...this.#holdings.values()]) {
      if (holding.entry.session !== session || holding.done) continue;
      this.#finish(holding);
    }
  }

  #newEntry(session: EtcdSession, dir: string, token: string): Entry {
    const slot = session.reserveSlot(dir);
    const name = this.#keys.entry(dir, session.leaseId, slot);
    const keys = this.#dirKeys(dir);
    let last = keys.lastEntry;
    if (last?.name !== name) keys.lastEntry = last = { name, raw: this.#raw(name) };
    return { dir, name, raw: last.raw, slot, token, session };
  }

  /** The cached keys of `dir` (bounded: the oldest directory makes room). */
  #dirKeys(dir: string): DirKeys {
    const known = this.#dirs.get(dir);
    if (known) return known;
    if (this.#dirs.size >= DIR_CACHE_SIZE) this.#dirs.delete(this.#dirs.keys().next().value!);
    const raw = this.#raw(dir);
    const end = prefixEnd(raw);
    const keys: DirKeys = {
      raw,
      isEmpty: { key: raw, range_end: end, target: 'Create', result: 'Equal', create_revision: 0 },
      oldest: { key: raw, range_end: end, limit: 1, sort_target: 'Create', sort_order: 'Ascend' },
      newestThree: {
        key: raw,
        range_end: end,
        limit: 3,
        sort_target: 'Create',
        sort_order: 'Descend',
        keys_only: true,
      },
      lastEntry: undefined,
    };
    this.#dirs.set(dir, keys);
    return keys;
  }

  #hold(entry: Entry, revision: string, startedAt: number, ttlMs: number): Granted {
    const holding: Holding = {
      entry,
      revision,
      reapAt: startedAt + ttlMs,
      timer: undefined,
      reaping: undefined,
      done: false,
    };
    // A second holding under the same token (a caller reusing tokens) keeps its own reaper.
    this.#holdings.set(refOf(entry.dir, entry.token), holding);
    this.#armReaper(holding);
    const { session } = entry;
    // One signal per session, shared by its holdings (the core stops listening when a lease
    // settles). Not a LockLostError: the core then reports `unreachable` under the caller's key.
    let lost = session.lostSignal;
    if (session.lost) {
      this.#sessionEnded(session);
      // Closed rather than lost: `lostSignal` stays quiet, but this holding is gone already.
      if (!lost.aborted) lost = AbortSignal.abort(session.signal.reason);
    }
    return { acquired: true, fence: BigInt(revision), startedAt, lost };
  }

  #armReaper(holding: Holding): void {
    clearTimeout(holding.timer);
    holding.timer = setTimeout(() => this.#reap(holding), Math.max(0, holding.reapAt - Date.now()));
    holding.timer.unref?.();
  }

  /** The lock's TTL passed without an extend: free it in etcd, as a store-side TTL would. */
  #reap(holding: Holding): void {
    if (holding.done) return;
    this.#finish(holding);
    holding.reaping = this.#removeEntry(holding.entry, holding.revision).finally(() => {
      holding.reaping = undefined;
    });
  }

  /** The holding is no longer ours to extend or reap. */
  #finish(holding: Holding): void {
    holding.done = true;
    clearTimeout(holding.timer);
    holding.timer = undefined;
    const ref = refOf(holding.entry.dir, holding.entry.token);
    if (this.#holdings.get(ref) === holding) this.#holdings.delete(ref);
  }

  /**
   * Delete `entry` if it is still the one created at `revision`, then free its slot. Transient
   * failures are retried, then handed to a background loop for as long as the session lives (a
   * stuck entry would block the queue behind it). Never rejects.
   */
  async #removeEntry(entry: Entry, revision: string): Promise<void> {
    const { session } = entry;
    const name = entry.raw;
    const remove = (callOptions: CallOptions) =>
      this.#client.kv.txn(
        {
          compare: [{ key: name, target: 'Create', result: 'Equal', create_revision: revision }],
          success: [{ request_delete_range: { key: name } }],
        },
        callOptions,
      );
    // Deleted, or already gone (no one else writes our entry names): the slot is free again.
    const done = () => session.freeSlot(entry.dir, entry.slot);
    try {
      await this.#call('dequeue', remove, { session });
      done();
    } catch {
      const retryInBackground = async () => {
        for (let attempt = 1; !session.lost && !this.#closing.signal.aborted; attempt += 1) {
          await sleep(Math.min(MAX_RETRY_DELAY_MS, this.#options.retryDelayMs * 2 ** attempt));
          try {
            await this.#call('dequeue', remove, { session });
            done();
            return;
          } catch {
            // Keep trying while the session lives; its expiry removes the entry otherwise.
          }
        }
      };
      retryInBackground().catch(() => undefined);
    }
  }

  /**
   * Take back an entry whose put may or may not have gone through (its answer was lost, or the
   * caller aborted while it was in flight): once the request in flight settles, delete the entry
   * if it exists. Never rejects.
   */
  async #abandon(entry: Entry, inFlight: Promise<unknown> | undefined): Promise<void> {
    try {
      await inFlight?.catch(() => undefined);
      const { kvs } = await this.#call(
        'dequeue',
        (callOptions) => this.#client.kv.range({ key: entry.raw }, callOptions),
        { session: entry.session },
      );
      const kv = kvs[0];
      if (kv) await this.#removeEntry(entry, kv.create_revision);
      else entry.session.freeSlot(entry.dir, entry.slot);
    } catch {
      // Unreachable etcd: the entry goes when the session does (its slot stays reserved).
    }
  }

  // ---- etcd helpers ----

  /**
   * Run one etcd call with a gRPC deadline, retrying transient failures with a doubling delay.
   * Every call here is safe to repeat (reads, or txns guarded by a compare).
   */
  async #call<T>(
    what: string,
    call: (callOptions: CallOptions) => Promise<T>,
    options: {
      signal?: AbortSignal | undefined;
      /**
       * A signal read only once the first attempt failed: a result that races an abort is the
       * caller's to undo. Its end is still noticed at once through `onAbort` if the caller has it
       * (the core does: no controller is built for that), else when the attempt answers (bounded
       * by its gRPC deadline).
       */
      lazySignal?: QueuedAcquireOptions;
      /** Reject at once when the backend closes (a queued acquire). */
      closable?: boolean;
      session?: EtcdSession;
      tries?: number;
      /** Receives the request still in flight when an abort or close ended the wait for it. */
      inFlight?: (late: Promise<T>) => void;
    } = {},
  ): Promise<T> {
    const tries = options.tries ?? this.#options.retryTries;
    const closable = options.closable === true;
    let signal = options.signal;
    for (let attempt = 1; ; attempt += 1) {
      signal?.throwIfAborted();
      if (closable) this.#throwIfClosed();
      const pending = call(this.#deadline());
      try {
        return await (closable
          ? this.#raceClose(pending, signal, signal ? undefined : options.lazySignal?.onAbort)
          : signal
            ? raceAbort(pending, signal)
            : pending);
      } catch (error) {
        signal ??= options.lazySignal?.signal;
        const aborted = signal?.aborted
          ? signal
          : closable && this.#closing.signal.aborted
            ? this.#closing.signal
            : undefined;
        if (aborted) {
          pending.catch(() => undefined);
          options.inFlight?.(pending);
          throw aborted.reason;
        }
        if (isLeaseGone(error) && options.session) {
          const lost = new BackendUnavailableError('etcd session lease is gone', { cause: error });
          options.session.markLost(lost);
          throw lost;
        }
        const lockError = toLockError(error, what);
        if (!lockError.retryable || attempt >= tries || options.session?.lost) throw lockError;
        if (this.#closing.signal.aborted) throw new LockClosedError('etcd backend');
        const delay = Math.min(MAX_RETRY_DELAY_MS, this.#options.retryDelayMs * 2 ** (attempt - 1));
        await pause(delay, [signal, closable ? this.#closing.signal : undefined]);
      }
    }
  }

  /**
   * `pending`, or a rejection as soon as `signal` aborts (or `subscribe` reports the wait's end)
   * or the backend closes.
   */
  #raceClose<T>(
    pending: Promise<T>,
    signal: AbortSignal | undefined,
    subscribe?: QueuedAcquireOptions['onAbort'],
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason as unknown);
      this.#onClose.add(reject);
      signal?.addEventListener('abort', onAbort, { once: true });
      const unsubscribe = subscribe?.((reason) => reject(reason));
      const settle = () => {
        this.#onClose.delete(reject);
        signal?.removeEventListener('abort', onAbort);
        unsubscribe?.();
      };
      pending.then(
        (value) => {
          settle();
          resolve(value);
        },
        (error: unknown) => {
          settle();
          reject(error);
        },
      );
    });
  }

  #deadline(): CallOptions {
    return { deadline: Date.now() + this.#options.operationTimeoutMs };
  }

  async #oldestEntry(dir: string, signal: AbortSignal | undefined): Promise<IKeyValue | undefined> {
    const response = await this.#call(
      'read',
      (callOptions) => this.#client.kv.range(this.#oldest(dir), callOptions),
      { signal },
    );
    return response.kvs[0];
  }

  /** Range request for the holder's entry (lowest create revision) and the queue length. */
  #oldest(dir: string): IRangeRequest {
    return this.#dirKeys(dir).oldest;
  }

  /**
   * A txn compare that holds when the lock's directory has no entries: a compare over a whole
   * range holds when it holds for every key in it, and an empty range compares as revision 0.
   */
  #isEmpty(dir: string): DirKeys['isEmpty'] {
    return this.#dirKeys(dir).isEmpty;
  }

  #putEntry(entry: Entry) {
    return {
      request_put: {
        key: entry.raw,
        value: Buffer.from(entry.token),
        lease: entry.session.leaseId,
      },
    };
  }

  /** A txn deleting `kv` only if it is still the entry created at its create revision. */
  #deleteIfRevision(kv: IKeyValue) {
    return {
      compare: [
        {
          key: kv.key,
          target: 'Create' as const,
          result: 'Equal' as const,
          create_revision: kv.create_revision,
        },
      ],
      success: [{ request_delete_range: { key: kv.key } }],
    };
  }

  /** True when `kv` is `entry` as we wrote it (our name and token, under our session). */
  #isEntry(kv: IKeyValue, entry: Entry): boolean {
    return (
      this.#name(kv.key) === entry.name &&
      kv.value.toString() === entry.token &&
      kv.lease === entry.session.leaseId
    );
  }

  #info(owner: IKeyValue, key: string, dir: string, waiters: number): LockInfo {
    const token = owner.value.toString();
    const holding = this.#holdings.get(refOf(dir, token));
    const local =
      holding && !holding.done && holding.revision === owner.create_revision ? holding : undefined;
    return {
      key,
      token,
      fence: BigInt(owner.create_revision),
      remainingMs: local
        ? Math.max(0, Math.min(local.reapAt, local.entry.session.deadline) - Date.now())
        : null,
      waiters,
    };
  }

  /** Our key as etcd stores it (under the client's namespace, if it has one). */
  #raw(key: string): Buffer {
    const prefix = this.#client.prefix;
    return prefix.length === 0 ? Buffer.from(key) : Buffer.concat([prefix, Buffer.from(key)]);
  }

  /** An etcd key back in our terms. */
  #name(raw: Buffer): string {
    return raw.subarray(this.#client.prefix.length).toString();
  }

  #throwIfClosed(): void {
    if (this.#closing.signal.aborted) throw new LockClosedError('etcd backend');
  }
}
