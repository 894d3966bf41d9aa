/**
 * Waiting for any one of many entries ahead to go: one watch of the lock's directory (deletes
 * only), for a full semaphore's waiter with more entries ahead than it watches one by one
 * (`SHARED_WATCH_MOST`). Any holder's release may be its grant, in whatever order they leave.
 *
 * The watch starts just after the revision the entries were read at, so that no delete in
 * between is missed. etcd serves such a watch from its "unsynced" set, caught up every 100 ms:
 * the first wake-up may come that much later, which the per-name watchers of `predecessor.ts`
 * avoid but which only a semaphore with a large limit pays here.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { Gone } from './predecessor.js';
import type { EtcdSession } from './session.js';

/** What {@link anyGone} needs. */
export interface DirDeletesWait {
  readonly client: Etcd3;
  /** The lock's directory, without the client's namespace (the watch builder adds it). */
  readonly dir: string;
  /** The names (without the namespace) of the entries ahead, in the order of their indexes. */
  readonly names: readonly string[];
  /** The store revision at which they were read. */
  readonly seenRevision: bigint;
  readonly session: EtcdSession;
  readonly signal: AbortSignal;
  /** The backend's close: rejects the wait with its reason. */
  readonly closing: AbortSignal;
  /** Re-check by range about this often even without an event (jittered: ½ to 1½ times). */
  readonly recheckMs: number;
}

const MAYBE_GONE: Gone = Object.freeze({ index: -1, revision: 0n });

/**
 * Resolve once one of the named entries is deleted after `seenRevision` (with its index and the
 * delete's revision), or with index -1 when one may be (a watch error, the periodic re-check).
 * Rejects on abort, session loss or the backend's close. Entry names are reused only after their
 * entry is gone, so a delete of a name after `seenRevision` is the delete of the entry we read.
 */
export function anyGone(wait: DirDeletesWait): Promise<Gone> {
  const { session, signal, closing, seenRevision } = wait;
  const indexOf = new Map(wait.names.map((name, index) => [name, index]));
  return new Promise<Gone>((resolve, reject) => {
    let settled = false;
    const watcher = wait.client
      .watch()
      .prefix(wait.dir)
      .only('delete')
      .startRevision(String(seenRevision + 1n))
      .watcher();
    const finish = (error?: unknown, gone = MAYBE_GONE) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      closing.removeEventListener('abort', onClose);
      session.signal.removeEventListener('abort', onSessionLost);
      watcher.cancel().catch(() => undefined);
      if (error === undefined) resolve(gone);
      else reject(error);
    };
    const onAbort = () => finish(signal.reason);
    const onClose = () => finish(closing.reason);
    const onSessionLost = () => finish(session.signal.reason);
    // The watcher strips the client's namespace from the keys of its events.
    watcher.on('delete', (kv: IKeyValue) => {
      const index = indexOf.get(kv.key.toString());
      const revision = BigInt(kv.mod_revision);
      if (index !== undefined && revision > seenRevision) finish(undefined, { index, revision });
    });
    // Cannot tell what was missed (a compacted start revision, a lost stream): re-check by range.
    watcher.on('error', () => finish());
    watcher.on('disconnected', () => finish());
    const timer = setTimeout(() => finish(), wait.recheckMs / 2 + Math.random() * wait.recheckMs);
    timer.unref?.();
    signal.addEventListener('abort', onAbort, { once: true });
    closing.addEventListener('abort', onClose, { once: true });
    session.signal.addEventListener('abort', onSessionLost, { once: true });
    if (signal.aborted) onAbort();
    else if (closing.aborted) onClose();
    else if (session.lost) onSessionLost();
  });
}
