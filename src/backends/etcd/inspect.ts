/**
 * What operators see: the holder of a lock (`inspect`) and every lock under a prefix (`list`),
 * from the queue entries in etcd. Entries written by etcd's recipe (`etcdctl lock`, Go's
 * `concurrency.Mutex`) are shown too, with their empty value as the token.
 */
import type { IKeyValue } from 'etcd3';
import type { LockInfo } from '../../core/backend.js';
import type { EtcdCalls } from './calls.js';
import type { DirKeysCache } from './dir-keys.js';
import { readEntry } from './entry.js';
import type { Holdings } from './holdings.js';
import { prefixEnd, type KeyLayout } from './keys.js';
import type { QueueReads } from './reads.js';

/** What the operator calls read. */
export interface InspectParts {
  readonly calls: EtcdCalls;
  readonly layout: KeyLayout;
  readonly dirs: DirKeysCache;
  readonly reads: QueueReads;
  readonly holdings: Holdings;
}

/** The holder of `key`, with the number of waiters behind it, or `null` when free. */
export async function inspectLock(
  parts: InspectParts,
  key: string,
  signal?: AbortSignal,
): Promise<LockInfo | null> {
  const dir = parts.layout.lockDir(key);
  const queue = await parts.reads.queue(dir, 'inspect', signal);
  const holder = queue[0];
  return holder ? lockInfo(parts, holder, key, dir, queue.length - 1) : null;
}

/** The holder of every lock whose key starts with `prefix`, by key. */
export async function listLocks(
  parts: InspectParts,
  prefix: string,
  signal?: AbortSignal,
): Promise<LockInfo[]> {
  const { calls, layout, dirs } = parts;
  let start = dirs.raw(layout.listPrefix(prefix));
  // etcd has no empty key: the whole keyspace is `\0` up to `\0`.
  if (start.length === 0) start = Buffer.from([0]);
  const { kvs } = await calls.run(
    'list',
    (callOptions) =>
      calls.client.kv.range(
        { key: start, range_end: prefixEnd(start), sort_target: 'Create', sort_order: 'Ascend' },
        callOptions,
      ),
    { signal },
  );
  // Oldest entry first, so the first entry seen for each key is its holder.
  const owners = new Map<string, { kv: IKeyValue; entries: number }>();
  for (const kv of kvs) {
    const key = layout.lockKeyOf(dirs.name(kv.key), kv);
    if (key === undefined) continue;
    const seen = owners.get(key);
    if (seen) seen.entries += 1;
    else owners.set(key, { kv, entries: 1 });
  }
  return [...owners.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, { kv, entries }]) => lockInfo(parts, kv, key, layout.lockDir(key), entries - 1));
}

/** A holder's entry as a `LockInfo`; the time left is known only for this backend's holdings. */
function lockInfo(
  parts: InspectParts,
  owner: IKeyValue,
  key: string,
  dir: string,
  waiters: number,
): LockInfo {
  const { token } = readEntry(owner);
  const holding = parts.holdings.get(dir, token);
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
