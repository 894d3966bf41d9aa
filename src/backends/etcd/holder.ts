/**
 * What a holder does with its lock: extend it, release it, and an operator's forced release.
 *
 * - Release of a holding of this backend: one plain delete of our entry. No compare is needed:
 *   the entry's name is reserved for this holding until it is gone (see
 *   `EtcdSession.reserveSlot`), so deleting the name can only delete this holding. Through an
 *   etcd outage the delete is retried for up to `releaseTimeoutMs` (never past the session's
 *   lease, after which etcd has freed the entry itself); if it still has not gone through, the
 *   release throws and the delete goes on in the background while the session lives.
 * - Release by token without a local record: only an entry that holds the lock now (the holder,
 *   or one of its shared holders) may go, guarded by its create revision.
 * - Forced release: every entry that holds the lock now goes (waiters stay queued).
 */
import type { IKeyValue } from 'etcd3';
import type {
  ExtendResult,
  LeaseRef,
  OperationOptions,
  ReleaseOutcome,
} from '../../core/backend.js';
import type { EtcdCalls } from './calls.js';
import { readEntry } from './entry.js';
import type { Holding, Holdings } from './holdings.js';
import type { KeyLayout } from './keys.js';
import type { ResolvedEtcdOptions } from './options.js';
import type { QueueReads } from './reads.js';
import type { DirKeysCache } from './dir-keys.js';

/** What the holder's calls work with. */
export interface HolderParts {
  readonly calls: EtcdCalls;
  readonly options: ResolvedEtcdOptions;
  readonly layout: KeyLayout;
  readonly dirs: DirKeysCache;
  readonly reads: QueueReads;
  readonly holdings: Holdings;
}

/** A txn deleting `kv` only if it is still the entry created at its create revision. */
function deleteIfRevision(kv: IKeyValue) {
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

/** The lock directory of `lease` and this backend's holding of it, if any. */
function holdingOf(parts: HolderParts, lease: LeaseRef): { dir: string; holding?: Holding } {
  const dir = parts.layout.lockDir(lease.key);
  const holding = parts.holdings.get(dir, lease.token);
  return holding ? { dir, holding } : { dir };
}

/** Reset the lease's TTL (the reaper's timer), only if `lease.token` still holds the key. */
export async function extendLock(
  parts: HolderParts,
  lease: LeaseRef,
  ttlMs: number,
  options: OperationOptions,
): Promise<ExtendResult> {
  const { holdings, reads, dirs } = parts;
  const { dir, holding } = holdingOf(parts, lease);
  if (holding?.reaping) await holding.reaping;
  const sentAt = Date.now();
  // The reaper must not fire while the extend is in flight.
  if (holding && !holding.done) {
    holding.reapAt = Math.max(holding.reapAt, sentAt + ttlMs);
    holdings.armReaper(holding);
  }
  const holders = await reads.holders(dir, 'extend', options.signal);
  const owned = holders.filter((kv) => readEntry(kv).token === lease.token);
  if (owned.length === 0) {
    return { extended: false, reason: holders.length > 0 ? 'not-owner' : 'expired' };
  }
  if (!holding) {
    // Held through another backend instance, whose reaper we cannot postpone: vouch for no time.
    return { extended: true, validityMs: 0 };
  }
  const ours = owned.some(
    (kv) => dirs.name(kv.key) === holding.entry.name && kv.create_revision === holding.revision,
  );
  if (holding.done || !ours) return { extended: false, reason: 'expired' };
  holding.reapAt = sentAt + ttlMs;
  holdings.armReaper(holding);
  return { extended: true };
}

/** Release the key only if `lease.token` holds it. */
export async function releaseLock(
  parts: HolderParts,
  lease: LeaseRef,
  options: OperationOptions,
): Promise<ReleaseOutcome> {
  const { holdings, reads, calls } = parts;
  const { dir, holding } = holdingOf(parts, lease);
  if (holding) {
    const wasDone = holding.done;
    holdings.finish(holding);
    if (holding.reaping) await holding.reaping;
    if (!wasDone && !holding.entry.session.lost) return releaseHeld(parts, holding, options);
  }
  for (let attempt = 1; ; attempt += 1) {
    const holders = await reads.holders(dir, 'release', options.signal);
    if (holders.length === 0) return 'expired';
    const owner = holders.find((kv) => readEntry(kv).token === lease.token);
    if (!owner) return 'not-owner';
    const response = await calls.run(
      'release',
      (callOptions) => calls.client.kv.txn(deleteIfRevision(owner), callOptions),
      { signal: options.signal },
    );
    if (response.succeeded) return 'released';
    if (attempt >= 3) return 'expired';
  }
}

async function releaseHeld(
  parts: HolderParts,
  holding: Holding,
  options: OperationOptions,
): Promise<ReleaseOutcome> {
  const { calls, holdings, reads } = parts;
  const { entry, revision } = holding;
  const { session } = entry;
  let deleted: number;
  try {
    const response = await calls.run(
      'release',
      (callOptions) => calls.client.kv.deleteRange({ key: entry.raw }, callOptions),
      {
        signal: options.signal,
        session,
        // Through an outage, but not past the lease: etcd frees the entry by itself then.
        until: Math.min(Date.now() + parts.options.releaseTimeoutMs, session.deadline),
      },
    );
    deleted = Number(response.deleted);
  } catch (error) {
    // The session was lost meanwhile: etcd frees (or has freed) the entry with its lease.
    if (session.lost && !options.signal?.aborted) return 'expired';
    // Keep trying in the background: an entry left behind would block the lock until the
    // session ends. The caller still learns that this call failed.
    holdings.removeEntry(entry, revision).catch(() => undefined);
    throw error;
  }
  // Either way our entry is gone now: its name may be reused.
  session.freeSlot(entry.dir, entry.slot);
  if (deleted > 0) return 'released';
  // Already gone (force-released, or the session expired): say who holds the key now.
  const holders = await reads.holders(entry.dir, 'release', options.signal);
  return holders.length > 0 ? 'not-owner' : 'expired';
}

/** Remove the key's holders (the holder, or every shared holder), whoever they are. */
export async function forceReleaseLock(
  parts: HolderParts,
  key: string,
  options: OperationOptions,
): Promise<boolean> {
  const { layout, holdings, reads, calls } = parts;
  const dir = layout.lockDir(key);
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const holders = await reads.holders(dir, 'forceRelease', options.signal);
    if (holders.length === 0) return false;
    const removed = await Promise.all(
      holders.map(async (owner) => {
        const response = await calls.run(
          'forceRelease',
          (callOptions) => calls.client.kv.txn(deleteIfRevision(owner), callOptions),
          { signal: options.signal },
        );
        if (!response.succeeded) return false;
        const holding = holdings.get(dir, readEntry(owner).token);
        if (holding?.revision === owner.create_revision) {
          holdings.finish(holding);
          holding.entry.session.freeSlot(dir, holding.entry.slot);
        }
        return true;
      }),
    );
    if (removed.some(Boolean)) return true;
  }
  return false;
}
