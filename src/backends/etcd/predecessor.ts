/**
 * Waiting in the queue: a waiter watches only the entry just before its own (no thundering herd)
 * and wakes when that entry is deleted.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { EtcdSession } from './session.js';

/** What {@link predecessorGone} needs. */
export interface PredecessorWait {
  readonly client: Etcd3;
  /** The predecessor's entry as we read it (raw key, create revision). */
  readonly predecessor: IKeyValue;
  /** Its key without the client's namespace, for the watch builder (which adds it). */
  readonly name: string;
  /** The store revision at which we read it. */
  readonly seenRevision: bigint;
  readonly session: EtcdSession;
  readonly signal: AbortSignal;
  /** The backend's close: rejects the wait with its reason. */
  readonly closing: AbortSignal;
  /** Re-check by range about this often even without an event (jittered: ½ to 1½ times). */
  readonly recheckMs: number;
  /** gRPC options (a deadline) for the one read this may make. */
  readonly callOptions: () => { readonly deadline: number };
}

/**
 * Resolve once the predecessor's entry may be gone: `true` on its delete event (it is gone),
 * `false` on a watch error or the periodic re-check (it may be). Rejects on abort, session loss
 * or the backend's close.
 *
 * The watch starts at the current revision rather than at `seenRevision + 1`: etcd serves a watch
 * that starts in the past from its "unsynced" set, which it catches up only every 100 ms, so every
 * handoff would wait up to 100 ms. Instead, if anything was written between our read
 * (`seenRevision`) and the watch's creation, one read checks the predecessor is still there.
 */
export function predecessorGone(wait: PredecessorWait): Promise<boolean> {
  const { client, predecessor, session, signal, closing } = wait;
  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    const watcher = client
      .watch()
      .key(wait.name)
      .only('delete') // etcd3's `only('delete')` filters out puts (its `ignore` is an alias of `only`)
      .watcher();
    const finish = (error?: unknown, deleted = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      closing.removeEventListener('abort', onClose);
      session.signal.removeEventListener('abort', onSessionLost);
      watcher.cancel().catch(() => undefined);
      if (error === undefined) resolve(deleted);
      else reject(error);
    };
    const onAbort = () => finish(signal.reason);
    const onClose = () => finish(closing.reason);
    const onSessionLost = () => finish(session.signal.reason);
    // Any delete of this name means our predecessor's entry is gone (a reused name is only
    // written again after its previous entry was deleted).
    watcher.on('delete', () => finish(undefined, true));
    watcher.once('connected', (response: { header: { revision: string } }) => {
      if (settled || BigInt(response.header.revision) <= wait.seenRevision) return;
      client.kv.range({ key: predecessor.key, keys_only: true }, wait.callOptions()).then(
        (check) => {
          // Entry names are reused: the same name with a newer create revision is a new entry
          // behind us, and our predecessor is gone.
          if (check.kvs[0]?.create_revision !== predecessor.create_revision) {
            finish(undefined, true);
          }
        },
        () => finish(), // cannot tell: re-check by range
      );
    });
    // A broken watch resolves into a re-check by range; the watcher's own errors never throw.
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
