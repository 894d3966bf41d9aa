/**
 * Waiting in the queue: a waiter watches the entry just before its own, and the one before that
 * while its predecessor does not hold the lock (never the whole queue: no thundering herd), and
 * wakes when one of them is deleted.
 *
 * Watchers are kept per entry name for a while and reused: in steady FIFO contention a waiter's
 * predecessor has the same name every round (entry slots are reused per session), and creating
 * and cancelling a watcher per wait costs two messages on the watch stream plus, almost always,
 * a read (see {@link firstGone}).
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { EtcdSession } from './session.js';

/** One watcher of an entry name, shared by successive waits on that name. */
class NameWatch {
  readonly name: string;
  readonly watcher: Watcher;
  /** Whether {@link PredecessorWatchers} keeps it after its waits end. */
  readonly cached: boolean;
  /** The store revision at which the watch started: it sees every later event. */
  connectedAt: bigint | undefined;
  /** The revision of the newest delete event seen (0 when none). */
  lastDelete = 0n;
  /** Disconnected or failed: events may have been missed; never reused. */
  broken = false;
  /** Called on every change of the fields above. */
  readonly waiters = new Set<() => void>();
  idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(client: Etcd3, name: string, cached: boolean) {
    this.name = name;
    this.cached = cached;
    // etcd3's `only('delete')` filters out puts (its `ignore` is an alias of `only`).
    this.watcher = client.watch().key(name).only('delete').watcher();
    this.watcher.on('connected', (response: { header: { revision: string } }) => {
      this.connectedAt ??= BigInt(response.header.revision);
      this.#changed();
    });
    this.watcher.on('delete', (kv: IKeyValue) => {
      const revision = BigInt(kv.mod_revision);
      if (revision > this.lastDelete) this.lastDelete = revision;
      this.#changed();
    });
    // A reconnect resumes from the last revision seen, but late (etcd's unsynced watchers catch
    // up every 100 ms): waiters re-check by range instead, and the watcher is dropped.
    const broken = () => {
      this.broken = true;
      this.#changed();
    };
    this.watcher.on('error', broken);
    this.watcher.on('disconnected', broken);
  }

  #changed(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  cancel(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    return this.watcher.cancel().catch(() => undefined);
  }
}

/**
 * A small cache of watchers by entry name: at most `capacity` kept, each cancelled after
 * `idleMs` without a wait, all on `close()`.
 */
export class PredecessorWatchers {
  readonly #client: Etcd3;
  readonly #capacity: number;
  readonly #idleMs: number;
  readonly #byName = new Map<string, NameWatch>();
  #closed = false;

  constructor(client: Etcd3, capacity: number, idleMs: number) {
    this.#client = client;
    this.#capacity = capacity;
    this.#idleMs = idleMs;
  }

  /** A live watcher of `name`: a cached one, else a new one (cached if there is room). */
  take(name: string): NameWatch {
    const known = this.#byName.get(name);
    if (known && !known.broken) {
      clearTimeout(known.idleTimer);
      known.idleTimer = undefined;
      return known;
    }
    if (known) this.#drop(known);
    let room = !this.#closed && this.#byName.size < this.#capacity;
    if (!room && !this.#closed) {
      for (const idle of this.#byName.values()) {
        if (idle.waiters.size > 0) continue;
        this.#drop(idle);
        room = true;
        break;
      }
    }
    const watch = new NameWatch(this.#client, name, room);
    if (room) this.#byName.set(name, watch);
    return watch;
  }

  /** A wait on `watch` ended: keep it for the next one a while, unless it cannot serve it. */
  give(watch: NameWatch): void {
    if (watch.waiters.size > 0) return;
    if (!watch.cached || watch.broken || this.#closed) {
      this.#drop(watch);
      return;
    }
    clearTimeout(watch.idleTimer);
    watch.idleTimer = setTimeout(() => this.#drop(watch), this.#idleMs);
    watch.idleTimer.unref?.();
  }

  /** Cancel every watcher (resolves once etcd answered, or never: bound the wait). */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#byName.values()];
    this.#byName.clear();
    await Promise.all(all.map((watch) => watch.cancel()));
  }

  #drop(watch: NameWatch): void {
    if (this.#byName.get(watch.name) === watch) this.#byName.delete(watch.name);
    watch.cancel().catch(() => undefined);
  }
}

/** One entry ahead of ours that a waiter watches. */
export interface WatchedEntry {
  /** The entry as we read it (raw key, create revision). */
  readonly kv: IKeyValue;
  /** Its key without the client's namespace, for the watch builder (which adds it). */
  readonly name: string;
}

/** What {@link firstGone} needs. */
export interface AheadWait {
  readonly client: Etcd3;
  readonly watchers: PredecessorWatchers;
  /** Our predecessor, then (optionally) the entry just before it. */
  readonly entries: readonly WatchedEntry[];
  /** The store revision at which we read them. */
  readonly seenRevision: bigint;
  readonly session: EtcdSession;
  readonly signal: AbortSignal;
  /** The backend's close: rejects the wait with its reason. */
  readonly closing: AbortSignal;
  /** Re-check by range about this often even without an event (jittered: ½ to 1½ times). */
  readonly recheckMs: number;
  /** gRPC options (a deadline) for the reads this may make. */
  readonly callOptions: () => { readonly deadline: number };
}

/** How a {@link firstGone} wait ended. */
export interface Gone {
  /** Which watched entry is gone, or -1 when one may be (a watch error, the periodic re-check). */
  readonly index: number;
  /** A store revision at which that entry was gone (0 when `index` is -1). */
  readonly revision: bigint;
}

const MAYBE_GONE: Gone = Object.freeze({ index: -1, revision: 0n });

/** One watched entry's state during a wait. */
interface Watching {
  readonly entry: WatchedEntry;
  readonly watch: NameWatch;
  checking: boolean;
}

/**
 * Resolve once one of the watched entries may be gone: with its index (and the revision of its
 * delete) on a delete of its name after our read (it is gone), with -1 on a watch error or the
 * periodic re-check (something may be). Rejects on abort, session loss or the backend's close.
 *
 * Why two entries: a waiter whose predecessor is not yet the holder must read the queue again
 * once the predecessor goes (it may have given up, leaving older entries). Watching the entry
 * before it too moves that read off the handoff: when that one goes, the waiter reads while its
 * predecessor holds the lock, and learns that the predecessor's delete will be its own grant.
 *
 * A delete of a name at a revision above `seenRevision` means that entry is gone: it existed at
 * `seenRevision`, and a reused name is only written again after its entry was deleted. Older
 * deletes (a reused watcher saw them) are of earlier entries under that name.
 *
 * A new watch starts at the current revision rather than at `seenRevision + 1`: etcd serves a
 * watch that starts in the past from its "unsynced" set, which it catches up only every 100 ms,
 * so every handoff would wait up to 100 ms. Instead, if anything was written between our read and
 * the watch's start, one read checks the entry is still there. A reused watcher that started at
 * or before our read saw every later event, so it needs no read.
 */
export function firstGone(wait: AheadWait): Promise<Gone> {
  const { client, session, signal, closing, seenRevision } = wait;
  return new Promise<Gone>((resolve, reject) => {
    let settled = false;
    const watching: Watching[] = wait.entries.map((entry) => ({
      entry,
      watch: wait.watchers.take(entry.name),
      checking: false,
    }));
    const finish = (error?: unknown, gone = MAYBE_GONE) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      closing.removeEventListener('abort', onClose);
      session.signal.removeEventListener('abort', onSessionLost);
      for (const { watch } of watching) {
        watch.waiters.delete(update);
        wait.watchers.give(watch);
      }
      if (error === undefined) resolve(gone);
      else reject(error);
    };
    const onAbort = () => finish(signal.reason);
    const onClose = () => finish(closing.reason);
    const onSessionLost = () => finish(session.signal.reason);
    const check = (one: Watching, index: number) => {
      const { watch, entry } = one;
      if (watch.lastDelete > seenRevision) {
        return finish(undefined, { index, revision: watch.lastDelete });
      }
      // Cannot tell what was missed: re-check by range.
      if (watch.broken) return finish();
      if (watch.connectedAt === undefined || watch.connectedAt <= seenRevision || one.checking) {
        return;
      }
      one.checking = true;
      client.kv.range({ key: entry.kv.key, keys_only: true }, wait.callOptions()).then(
        (found) => {
          // Entry names are reused: the same name with a newer create revision is a new entry
          // behind us, and the one we watch is gone.
          if (found.kvs[0]?.create_revision !== entry.kv.create_revision) {
            finish(undefined, { index, revision: BigInt(found.header.revision) });
          }
        },
        () => finish(), // cannot tell: re-check by range
      );
    };
    const update = () => {
      for (let index = 0; index < watching.length && !settled; index++) {
        check(watching[index]!, index);
      }
    };
    const timer = setTimeout(() => finish(), wait.recheckMs / 2 + Math.random() * wait.recheckMs);
    timer.unref?.();
    for (const { watch } of watching) watch.waiters.add(update);
    signal.addEventListener('abort', onAbort, { once: true });
    closing.addEventListener('abort', onClose, { once: true });
    session.signal.addEventListener('abort', onSessionLost, { once: true });
    if (signal.aborted) onAbort();
    else if (closing.aborted) onClose();
    else if (session.lost) onSessionLost();
    else update();
  });
}
