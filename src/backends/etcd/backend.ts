/**
 * The etcd lock backend: etcd's own mutex recipe over a session lease.
 *
 * - Acquire: one txn puts this request's queue entry `<dir>/<token>` under the session's lease
 *   and reads the two newest entries of `<dir>`: ours and its predecessor. No predecessor: ours
 *   has the lowest create revision and holds the lock. Otherwise wait for the deletion of the
 *   predecessor only (a watch from the revision we read at, so nothing is missed): waiters are
 *   served in create-revision order, and each release wakes exactly one waiter.
 * - Fence: the create revision of the holder's entry (etcd revisions only grow).
 * - Release: one txn deletes our entry only if its create revision is still the one we were
 *   granted, so a stale token never deletes someone else's holding.
 * - TTL: etcd frees a session's entries when the session's lease expires (the process died or lost
 *   etcd). A live holder that stops extending is reaped by this backend at the lock's TTL (local
 *   timer, guarded delete), which is never earlier than the core's local deadline for the lease.
 */
import type { Etcd3, IKeyValue, IRangeRequest, IRangeResponse, ITxnResponse } from 'etcd3';
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
  ReleaseOutcome,
  Unwatch,
} from '../../core/backend.js';
import { BackendUnavailableError, LockClosedError, LockLostError } from '../../core/errors.js';
import { isLeaseGone, toLockError } from './errors.js';
import { KeyLayout, prefixEnd } from './keys.js';
import type { ResolvedEtcdOptions } from './options.js';
import { EtcdSession } from './session.js';

/** The per-call options we pass to `etcd3` (a gRPC deadline). */
interface CallOptions {
  readonly deadline: number;
}

type Granted = AcquireResult & { readonly acquired: true };

/** A lock this backend holds: its queue entry, granted create revision, and reaper timer. */
interface Holding {
  /** The lock's key, as the core passed it. */
  readonly key: string;
  readonly entry: string;
  readonly revision: string;
  readonly session: EtcdSession;
  /** Local epoch ms at which the backend deletes the entry unless extended first. */
  reapAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  reaping: Promise<void> | undefined;
  /**
   * Aborted when the session dies while this is held: the `lost` signal handed to the core. One
   * per holding (not the session's own signal) so that listeners die with the holding.
   */
  readonly lost: AbortController;
}

/** The longest pause between retries of a call that must eventually go through. */
const MAX_RETRY_DELAY_MS = 2_000;

/** `promise`, or a rejection with `signal.reason` as soon as the signal aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as unknown);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as unknown);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

const CAPABILITIES: BackendCapabilities = Object.freeze({
  fencing: true,
  notify: true,
  fifo: true,
  crossProcess: true,
});

/** A `LockBackend` over etcd. Created by `etcdBackend()`. */
export class EtcdBackend implements LockBackend {
  readonly name = 'etcd';
  readonly capabilities = CAPABILITIES;

  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #options: ResolvedEtcdOptions;
  readonly #keys: KeyLayout;
  readonly #holdings = new Map<string, Holding>();
  /** Entries of acquire calls in progress (not to be deleted by a background clean-up). */
  readonly #queued = new Set<string>();
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;
  #session: Promise<EtcdSession> | undefined;

  constructor(client: Etcd3, ownsClient: boolean, options: ResolvedEtcdOptions) {
    this.#client = client;
    this.#ownsClient = ownsClient;
    this.#options = options;
    this.#keys = new KeyLayout(options.namespace);
  }

  async tryAcquire(
    request: AcquireRequest,
    options: OperationOptions = {},
  ): Promise<AcquireResult> {
    const dir = this.#keys.lockDir(request.key);
    const entry = this.#keys.entry(request.key, request.token);
    for (let sessionAttempt = 1; ; sessionAttempt += 1) {
      this.#throwIfClosed();
      const session = await this.#currentSession();
      const sentAt = Date.now();
      // Put our entry only if the lock's directory is empty: a compare over the whole range
      // (an empty range compares as create revision 0). One write, and nothing left queued.
      const txn = (callOptions: CallOptions) =>
        this.#client.kv.txn(
          {
            compare: [
              {
                key: this.#raw(dir),
                range_end: prefixEnd(this.#raw(dir)),
                target: 'Create',
                result: 'Equal',
                create_revision: 0,
              },
            ],
            success: [this.#putEntry(entry, request.token, session)],
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
        await this.#abandon(entry, session, inFlight);
        throw error;
      }
      let revision: string;
      if (response.succeeded) {
        revision = response.header.revision;
      } else {
        // A retried txn whose first attempt got through finds its own entry in front.
        const first = response.responses[0]?.response_range.kvs[0];
        if (!first || this.#name(first.key) !== entry || first.lease !== session.leaseId) {
          return { acquired: false };
        }
        revision = first.create_revision;
      }
      if (options.signal?.aborted) {
        await this.#removeEntry(entry, revision, session);
        throw options.signal.reason;
      }
      return this.#hold(request.key, entry, revision, session, sentAt, request.ttlMs);
    }
  }

  async acquire(
    request: AcquireRequest,
    options: OperationOptions & { readonly signal: AbortSignal },
  ): Promise<Granted> {
    const signal = AbortSignal.any([options.signal, this.#closing.signal]);
    for (let sessionAttempt = 1; ; sessionAttempt += 1) {
      this.#throwIfClosed();
      signal.throwIfAborted();
      const session = await this.#currentSession();
      try {
        return await this.#enqueueAndWait(request, session, signal);
      } catch (error) {
        // A wait ended by a closing lock manager settles only once this backend has closed, so
        // that the caller sees `close()` resolve no earlier than its pending acquires reject.
        if (this.#closing.signal.aborted) await this.#closed;
        if (signal.aborted) throw signal.reason;
        // Our session died while we queued: our entry went with it; queue again in a new one.
        if (session.lost && sessionAttempt < 3) continue;
        throw error;
      }
    }
  }

  async #enqueueAndWait(
    request: AcquireRequest,
    session: EtcdSession,
    signal: AbortSignal,
  ): Promise<Granted> {
    const dir = this.#keys.lockDir(request.key);
    const entry = this.#keys.entry(request.key, request.token);
    let revision: string | undefined;
    let inFlight: Promise<unknown> | undefined;
    this.#queued.add(entry);
    try {
      let sentAt = Date.now();
      const response = await this.#call(
        'acquire',
        (callOptions) =>
          this.#client.kv.txn(
            {
              // Idempotent: a retry after a lost response finds the entry and reads it instead.
              compare: [
                {
                  key: this.#raw(entry),
                  target: 'Create',
                  result: 'Equal',
                  create_revision: 0,
                },
              ],
              success: [
                this.#putEntry(entry, request.token, session),
                { request_range: this.#newestTwo(dir) },
              ],
              failure: [{ request_range: { key: this.#raw(entry) } }],
            },
            callOptions,
          ),
        { session, signal, tries: Infinity, inFlight: (late) => (inFlight = late) },
      );
      let queue: IRangeResponse;
      if (response.succeeded) {
        revision = response.header.revision;
        queue = response.responses[1]!.response_range;
      } else {
        const existing = response.responses[0]?.response_range.kvs[0];
        if (!existing) throw new BackendUnavailableError('etcd queue entry vanished; retry');
        if (existing.lease !== session.leaseId) {
          // Left by an earlier session of this token that etcd has not expired yet.
          await this.#removeEntry(entry, existing.create_revision, session);
          throw new BackendUnavailableError('a stale etcd queue entry of this token was removed');
        }
        revision = existing.create_revision;
        sentAt = Date.now();
        queue = await this.#waitingRange(dir, revision, session, signal);
      }
      for (;;) {
        signal.throwIfAborted();
        const [own, predecessor] = queue.kvs;
        if (!own || own.create_revision !== revision) {
          // Deleted under us: the session expired, or an operator force-released the key.
          throw new BackendUnavailableError(`etcd queue entry of "${request.key}" was removed`);
        }
        if (!predecessor)
          return this.#hold(request.key, entry, revision, session, sentAt, request.ttlMs);
        await this.#predecessorGone(
          this.#name(predecessor.key),
          BigInt(queue.header.revision) + 1n,
          session,
          signal,
        );
        sentAt = Date.now();
        queue = await this.#waitingRange(dir, revision, session, signal);
      }
    } catch (error) {
      // Leave nothing behind: a waiter that gives up (deadline, abort, failure) leaves the queue.
      this.#queued.delete(entry);
      if (!session.lost) {
        if (revision !== undefined) await this.#removeEntry(entry, revision, session);
        else await this.#abandon(entry, session, inFlight);
      }
      throw error;
    } finally {
      this.#queued.delete(entry);
    }
  }

  /** Our entry and the one just before it (by create revision), retried while we wait. */
  #waitingRange(
    dir: string,
    revision: string,
    session: EtcdSession,
    signal: AbortSignal,
  ): Promise<IRangeResponse> {
    return this.#call(
      'acquire (waiting)',
      (callOptions) =>
        this.#client.kv.range(
          { ...this.#newestTwo(dir), max_create_revision: revision },
          callOptions,
        ),
      { session, signal, tries: Infinity },
    );
  }

  /**
   * Resolve once the predecessor's entry may be gone: its delete event, a watch error, or the
   * periodic re-check. Rejects on abort or session loss.
   */
  #predecessorGone(
    predecessor: string,
    fromRevision: bigint,
    session: EtcdSession,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const watcher = this.#client
        .watch()
        .key(predecessor)
        .startRevision(fromRevision.toString())
        .only('delete') // etcd3's `only('delete')` filters out puts (its `ignore` is an alias of `only`)
        .watcher();
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        session.signal.removeEventListener('abort', onSessionLost);
        watcher.cancel().catch(() => undefined);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = () => finish(signal.reason);
      const onSessionLost = () => finish(session.signal.reason);
      watcher.on('delete', () => finish());
      // A broken watch resolves into a re-check by range; the watcher's own errors never throw.
      watcher.on('error', () => finish());
      const recheck = this.#options.recheckMs;
      const timer = setTimeout(() => finish(), recheck / 2 + Math.random() * recheck);
      timer.unref?.();
      signal.addEventListener('abort', onAbort, { once: true });
      session.signal.addEventListener('abort', onSessionLost, { once: true });
      if (signal.aborted) onAbort();
      else if (session.lost) onSessionLost();
    });
  }

  async extend(
    lease: LeaseRef,
    ttlMs: number,
    options: OperationOptions = {},
  ): Promise<ExtendResult> {
    this.#throwIfClosed();
    const dir = this.#keys.lockDir(lease.key);
    const entry = this.#keys.entry(lease.key, lease.token);
    const holding = this.#holdings.get(entry);
    if (holding?.reaping) await holding.reaping;
    const sentAt = Date.now();
    // The reaper must not fire while the extend is in flight.
    if (holding && this.#holdings.get(entry) === holding) {
      holding.reapAt = Math.max(holding.reapAt, sentAt + ttlMs);
      this.#armReaper(holding);
    }
    const { kvs } = await this.#call(
      'extend',
      (callOptions) => this.#client.kv.range(this.#oldest(dir), callOptions),
      { signal: options.signal },
    );
    const owner = kvs[0];
    if (!owner || this.#name(owner.key) !== entry) {
      return { extended: false, reason: owner ? 'not-owner' : 'expired' };
    }
    if (!holding) {
      // Held through another backend instance, whose reaper we cannot postpone: vouch for no time.
      return { extended: true, validityMs: 0 };
    }
    if (
      owner.create_revision !== holding.revision ||
      this.#holdings.get(entry) !== holding ||
      holding.session.lost
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
    const entry = this.#keys.entry(lease.key, lease.token);
    const holding = this.#holdings.get(entry);
    if (holding) {
      this.#forget(holding);
      if (holding.reaping) await holding.reaping;
    }
    let revision = holding && !holding.session.lost ? holding.revision : undefined;
    for (let attempt = 1; ; attempt += 1) {
      if (revision === undefined) {
        // Release by token without a local record: only the current holder's entry may go.
        const owner = await this.#oldestEntry(dir, options.signal);
        if (!owner) return 'expired';
        if (this.#name(owner.key) !== entry) return 'not-owner';
        revision = owner.create_revision;
      }
      const response = await this.#call(
        'release',
        (callOptions) =>
          this.#client.kv.txn(
            {
              compare: [
                {
                  key: this.#raw(entry),
                  target: 'Create',
                  result: 'Equal',
                  create_revision: revision!,
                },
              ],
              success: [{ request_delete_range: { key: this.#raw(entry) } }],
              failure: [{ request_range: this.#oldest(dir) }],
            },
            callOptions,
          ),
        { signal: options.signal },
      );
      if (response.succeeded) return 'released';
      const owner = response.responses[0]?.response_range.kvs[0];
      if (owner && this.#name(owner.key) === entry && attempt < 3) {
        revision = undefined; // the same token holds a newer entry: release that one
        continue;
      }
      return owner ? 'not-owner' : 'expired';
    }
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
    return this.#info(owner, key, Number(response.count) - 1);
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
      const parsed = this.#keys.parse(this.#name(kv.key));
      if (!parsed) continue;
      const seen = owners.get(parsed.key);
      if (seen) seen.entries += 1;
      else owners.set(parsed.key, { kv, entries: 1 });
    }
    return [...owners.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, { kv, entries }]) => this.#info(kv, key, entries - 1));
  }

  async forceRelease(key: string, options: OperationOptions = {}): Promise<boolean> {
    this.#throwIfClosed();
    const dir = this.#keys.lockDir(key);
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      const owner = await this.#oldestEntry(dir, options.signal);
      if (!owner) return false;
      const response = await this.#call(
        'forceRelease',
        (callOptions) =>
          this.#client.kv.txn(
            {
              compare: [
                {
                  key: owner.key,
                  target: 'Create',
                  result: 'Equal',
                  create_revision: owner.create_revision,
                },
              ],
              success: [{ request_delete_range: { key: owner.key } }],
            },
            callOptions,
          ),
        { signal: options.signal },
      );
      if (response.succeeded) {
        const holding = this.#holdings.get(this.#name(owner.key));
        if (holding?.revision === owner.create_revision) this.#forget(holding);
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
    this.#closing.abort(new LockClosedError('etcd backend'));
    for (const holding of [...this.#holdings.values()]) this.#forget(holding);
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
      if (holding.session !== session) continue;
      this.#forget(holding);
      holding.lost.abort(
        new LockLostError(holding.key, 'unreachable', { cause: session.signal.reason }),
      );
    }
  }

  #hold(
    key: string,
    entry: string,
    revision: string,
    session: EtcdSession,
    startedAt: number,
    ttlMs: number,
  ): Granted {
    const holding: Holding = {
      key,
      entry,
      revision,
      session,
      reapAt: startedAt + ttlMs,
      timer: undefined,
      reaping: undefined,
      lost: new AbortController(),
    };
    const previous = this.#holdings.get(entry);
    if (previous) this.#forget(previous);
    this.#holdings.set(entry, holding);
    this.#armReaper(holding);
    if (session.lost) this.#sessionEnded(session);
    return { acquired: true, fence: BigInt(revision), startedAt, lost: holding.lost.signal };
  }

  #armReaper(holding: Holding): void {
    clearTimeout(holding.timer);
    holding.timer = setTimeout(() => this.#reap(holding), Math.max(0, holding.reapAt - Date.now()));
    holding.timer.unref?.();
  }

  /** The lock's TTL passed without an extend: free it in etcd, as a store-side TTL would. */
  #reap(holding: Holding): void {
    if (this.#holdings.get(holding.entry) !== holding) return;
    holding.timer = undefined;
    holding.reaping = this.#removeEntry(holding.entry, holding.revision, holding.session).finally(
      () => {
        holding.reaping = undefined;
        if (this.#holdings.get(holding.entry) === holding) this.#holdings.delete(holding.entry);
      },
    );
  }

  #forget(holding: Holding): void {
    clearTimeout(holding.timer);
    holding.timer = undefined;
    if (this.#holdings.get(holding.entry) === holding) this.#holdings.delete(holding.entry);
  }

  /**
   * Delete `entry` if it is still the one created at `revision`. Transient failures are retried,
   * then handed to a background loop for as long as the session lives (a stuck entry would block
   * the queue behind it). Never rejects.
   */
  async #removeEntry(entry: string, revision: string, session: EtcdSession): Promise<void> {
    const remove = (callOptions: CallOptions) =>
      this.#client.kv.txn(
        {
          compare: [
            { key: this.#raw(entry), target: 'Create', result: 'Equal', create_revision: revision },
          ],
          success: [{ request_delete_range: { key: this.#raw(entry) } }],
        },
        callOptions,
      );
    try {
      await this.#call('dequeue', remove, { session });
    } catch {
      const retryInBackground = async () => {
        for (let attempt = 1; !session.lost && !this.#closing.signal.aborted; attempt += 1) {
          await sleep(Math.min(MAX_RETRY_DELAY_MS, this.#options.retryDelayMs * 2 ** attempt));
          try {
            await this.#call('dequeue', remove, { session });
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
   * if it exists under our session and no acquire of this backend is using it.
   */
  async #abandon(
    entry: string,
    session: EtcdSession,
    inFlight: Promise<unknown> | undefined,
  ): Promise<void> {
    try {
      await inFlight?.catch(() => undefined);
      const { kvs } = await this.#call(
        'dequeue',
        (callOptions) => this.#client.kv.range({ key: this.#raw(entry) }, callOptions),
        { session },
      );
      const kv = kvs[0];
      if (!kv || kv.lease !== session.leaseId) return;
      if (this.#queued.has(entry) || this.#holdings.has(entry)) return;
      await this.#removeEntry(entry, kv.create_revision, session);
    } catch {
      // Unreachable etcd: the entry goes when the session does.
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
      session?: EtcdSession;
      tries?: number;
      /** Receives the request still in flight when the signal aborted the wait for it. */
      inFlight?: (late: Promise<T>) => void;
    } = {},
  ): Promise<T> {
    const tries = options.tries ?? this.#options.retryTries;
    const { signal } = options;
    for (let attempt = 1; ; attempt += 1) {
      signal?.throwIfAborted();
      const pending = call({ deadline: Date.now() + this.#options.operationTimeoutMs });
      try {
        return await (signal ? raceAbort(pending, signal) : pending);
      } catch (error) {
        if (signal?.aborted) {
          pending.catch(() => undefined);
          options.inFlight?.(pending);
          throw signal.reason;
        }
        if (isLeaseGone(error) && options.session) {
          const lost = new BackendUnavailableError('etcd session lease is gone', { cause: error });
          options.session.markLost(lost);
          throw lost;
        }
        const lockError = toLockError(error, what);
        if (!lockError.retryable || attempt >= tries || options.session?.lost) throw lockError;
        if (this.#closing.signal.aborted) throw new LockClosedError('etcd backend');
        await sleep(
          Math.min(MAX_RETRY_DELAY_MS, this.#options.retryDelayMs * 2 ** (attempt - 1)),
          signal,
        );
      }
    }
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
    const key = this.#raw(dir);
    return {
      key,
      range_end: prefixEnd(key),
      limit: 1,
      sort_target: 'Create',
      sort_order: 'Ascend',
    };
  }

  /** Range request for the two newest entries (highest create revisions). */
  #newestTwo(dir: string): IRangeRequest {
    const key = this.#raw(dir);
    return {
      key,
      range_end: prefixEnd(key),
      limit: 2,
      sort_target: 'Create',
      sort_order: 'Descend',
    };
  }

  #putEntry(entry: string, token: string, session: EtcdSession) {
    return {
      request_put: { key: this.#raw(entry), value: Buffer.from(token), lease: session.leaseId },
    };
  }

  #info(owner: IKeyValue, key: string, waiters: number): LockInfo {
    const name = this.#name(owner.key);
    const holding = this.#holdings.get(name);
    const local = holding?.revision === owner.create_revision ? holding : undefined;
    return {
      key,
      token: this.#keys.parse(name)?.token ?? owner.value.toString(),
      fence: BigInt(owner.create_revision),
      remainingMs: local
        ? Math.max(0, Math.min(local.reapAt, local.session.deadline) - Date.now())
        : null,
      waiters,
    };
  }

  /** Our key as etcd stores it (under the client's namespace, if it has one). */
  #raw(key: string): Buffer {
    return Buffer.concat([this.#client.prefix, Buffer.from(key)]);
  }

  /** An etcd key back in our terms. */
  #name(raw: Buffer): string {
    return raw.subarray(this.#client.prefix.length).toString();
  }

  #throwIfClosed(): void {
    if (this.#closing.signal.aborted) throw new LockClosedError('etcd backend');
  }
}
