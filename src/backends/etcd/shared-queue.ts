/**
 * Taking a lock shared (a reader, a semaphore permit): the queue of `queue.ts` with the turn rule
 * of `shared-turn.ts`.
 *
 * - Acquire: one txn. If the lock's directory is empty it puts our entry and we hold the lock.
 *   Otherwise it puts the entry anyway and reads the whole queue back (a shared entry's turn
 *   depends on the kinds of every entry ahead, which a range cannot filter by value). We check
 *   the key's limit, then wait by watch for the deletion of the entries `sharedTurnOf` names
 *   (each by name, as `predecessor.ts` does, or past `SHARED_WATCH_MOST` of them by one watch of
 *   the directory, `dir-deletes.ts`), reading the queue again after each one that does not grant
 *   the lock by itself.
 * - Try-acquire: the same txn; if our entry cannot hold at once it is taken back (as Go's
 *   `TryLock` does). Meanwhile it is one more shared entry ahead of later ones: they may wait a
 *   moment longer, never hold too early.
 * - Fence: our entry's create revision. Holders are always a prefix of the queue, so a holding
 *   granted later never has a lower fence than one granted before it.
 */
import type { IKeyValue, IResponseOp } from 'etcd3';
import type {
  AcquireRequest,
  AcquireResult,
  OperationOptions,
  QueuedAcquireOptions,
} from '../../core/backend.js';
import { BackendUnavailableError } from '../../core/errors.js';
import { claimOf, type Claim } from '../../core/kinds.js';
import { anyGone } from './dir-deletes.js';
import type { Entry } from './entry.js';
import type { Granted } from './holdings.js';
import type { Gone } from './predecessor.js';
import type { QueueView } from './reads.js';
import type { EtcdSession } from './session.js';
import { SHARED_WATCH_MOST, checkSharedLimit, sharedTurnOf } from './shared-turn.js';
import type { QueueParts } from './queue.js';

/** What the shared side borrows from the queue (its entries, writes and watches). */
export interface SharedQueueParts extends QueueParts {
  newEntry(session: EtcdSession, dir: string, token: string, claim: Claim): Entry;
  put(entry: Entry): { readonly request_put: object };
  firstGone(
    watch: readonly IKeyValue[],
    seenRevision: bigint,
    session: EtcdSession,
    signal: AbortSignal,
  ): Promise<Gone>;
  /** Keep the client's watch stream up (see `LockQueue`), before a watch of a directory. */
  anchorWatchStream(): void;
}

/** The shared side of one backend's queue. */
export class SharedQueue {
  readonly #parts: SharedQueueParts;

  constructor(parts: SharedQueueParts) {
    this.#parts = parts;
  }

  async tryAcquire(request: AcquireRequest, options: OperationOptions): Promise<AcquireResult> {
    const { calls, layout, sessions, holdings } = this.#parts;
    const claim = claimOf(request);
    const dir = layout.lockDir(request.key);
    for (let sessionAttempt = 1; ; sessionAttempt += 1) {
      calls.throwIfClosed();
      const sentAt = Date.now();
      const session = await sessions.forTtl(request.ttlMs);
      const entry = this.#parts.newEntry(session, dir, request.token, claim);
      let inFlight: Promise<unknown> | undefined;
      let response;
      try {
        response = await calls.run(
          'tryAcquire',
          (callOptions) => calls.client.kv.txn(this.#enqueueTxn(entry), callOptions),
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
      let revision: string | undefined;
      try {
        if (response.succeeded) {
          revision = response.header.revision;
        } else {
          const placed = this.#placed(entry, response.responses);
          revision = placed.revision;
          checkSharedLimit(request.key, claim, placed.view.ahead);
          if (!sharedTurnOf(placed.view.ahead, claim).holds) {
            await holdings.removeEntry(entry, revision);
            return { acquired: false };
          }
        }
        options.signal?.throwIfAborted();
        return holdings.hold(entry, revision, sentAt, request.ttlMs);
      } catch (error) {
        if (revision !== undefined) await holdings.removeEntry(entry, revision);
        else await holdings.abandon(entry, undefined);
        throw error;
      }
    }
  }

  /** Queue a shared request and wait for its turn (see `LockQueue.acquire`, which retries). */
  async enqueueAndWait(
    request: AcquireRequest,
    session: EtcdSession,
    options: QueuedAcquireOptions,
    requestedAt: number,
  ): Promise<Granted> {
    const { calls, layout, reads, holdings } = this.#parts;
    const claim = claimOf(request);
    const dir = layout.lockDir(request.key);
    const entry = this.#parts.newEntry(session, dir, request.token, claim);
    let revision: string | undefined;
    let inFlight: Promise<unknown> | undefined;
    try {
      let sentAt = requestedAt;
      // Retrying is safe: a put on our own (reserved) entry name keeps its create revision, so a
      // retry after a lost answer finds our place in line.
      const response = await calls.run(
        'acquire',
        (deadline) => calls.client.kv.txn(this.#enqueueTxn(entry), deadline),
        {
          session,
          lazySignal: options,
          closable: true,
          tries: Infinity,
          inFlight: (late: Promise<unknown>) => (inFlight = late),
        },
      );
      if (response.succeeded) {
        revision = response.header.revision;
        return holdings.hold(entry, revision, sentAt, request.ttlMs);
      }
      const placed = this.#placed(entry, response.responses);
      revision = placed.revision;
      checkSharedLimit(request.key, claim, placed.view.ahead);
      // In line: from here on a failure happened mid-wait, and the core retries it.
      options.onQueued?.();
      const signal = options.signal;
      const waitOptions = { session, signal, closable: true, tries: Infinity };
      let view: QueueView = placed.view;
      for (let stale = false; ;) {
        signal.throwIfAborted();
        calls.closing.throwIfAborted();
        if (!view.own) {
          if (stale) {
            // Deleted under us: the session expired, or an operator force-released the key.
            throw new BackendUnavailableError(`etcd queue entry of "${request.key}" was removed`);
          }
          // Maybe a member that has not applied our put yet: ask again through the leader.
          stale = true;
          view = await reads.queueView(dir, revision, { ...waitOptions, serializable: false });
          continue;
        }
        stale = false;
        const turn = sharedTurnOf(view.ahead, claim);
        if (turn.holds) return holdings.hold(entry, revision, sentAt, request.ttlMs);
        const gone =
          turn.watch.length > SHARED_WATCH_MOST
            ? await this.#anyGoneInDir(dir, turn.watch, view.revision, session, signal)
            : await this.#parts.firstGone(turn.watch, view.revision, session, signal);
        sentAt = Date.now();
        if (gone.index >= 0 && gone.index < turn.grants && !session.lost) {
          // Entries ahead of ours are only ever deleted: without that one, ours holds.
          return holdings.hold(entry, revision, sentAt, request.ttlMs);
        }
        view = await reads.queueView(dir, revision, waitOptions);
        if (view.revision < gone.revision) {
          // A member that has not applied the delete we saw yet: ask through the leader.
          view = await reads.queueView(dir, revision, { ...waitOptions, serializable: false });
        }
      }
    } catch (error) {
      // Leave nothing behind: a waiter that gives up (deadline, abort, a limit mismatch,
      // failure) leaves the queue.
      if (!session.lost) {
        if (revision !== undefined) await holdings.removeEntry(entry, revision);
        else await holdings.abandon(entry, inFlight);
      }
      throw error;
    }
  }

  /** Wait for the deletion of any of `watch` by one watch of the whole directory. */
  #anyGoneInDir(
    dir: string,
    watch: readonly IKeyValue[],
    seenRevision: bigint,
    session: EtcdSession,
    signal: AbortSignal,
  ): Promise<Gone> {
    const { calls, dirs, options } = this.#parts;
    this.#parts.anchorWatchStream();
    return anyGone({
      client: calls.client,
      dir,
      names: watch.map((kv) => dirs.name(kv.key)),
      seenRevision,
      session,
      signal,
      closing: calls.closing,
      recheckMs: options.recheckMs,
    });
  }

  /**
   * Put our entry; if the directory was not empty, read our entry back (keys only: its create
   * revision) and the whole queue with values.
   */
  #enqueueTxn(entry: Entry) {
    const keys = this.#parts.dirs.get(entry.dir);
    const put = this.#parts.put(entry);
    return {
      compare: [keys.isEmpty],
      success: [put],
      failure: [
        put,
        { request_range: { key: entry.raw, keys_only: true } },
        { request_range: keys.all },
      ],
    };
  }

  /** Our place in line from the failure branch of {@link SharedQueue.#enqueueTxn}. */
  #placed(entry: Entry, responses: readonly IResponseOp[]): { revision: string; view: QueueView } {
    const mine = responses[1]?.response_range.kvs[0];
    if (!mine) throw new BackendUnavailableError('etcd queue entry vanished; retry');
    const revision = mine.create_revision;
    return {
      revision,
      view: this.#parts.reads.queueViewFrom(entry.dir, revision, responses[2]!.response_range),
    };
  }
}
