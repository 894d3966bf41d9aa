/**
 * What operators see: the holders of a lock (`inspect`) and every lock under a prefix (`list`),
 * from the queue entries in etcd: an exclusive holder, or every shared one (readers, permits). Entries written by etcd's recipe (`etcdctl lock`, Go's
 * `concurrency.Mutex`) are shown too, with their empty value as the token.
 */
import type { IKeyValue } from 'etcd3';
import type { HolderInfo, LockInfo } from '../../core/backend.js';
import type { EtcdCalls } from './calls.js';
import type { DirKeysCache } from './dir-keys.js';
import { readEntry } from './entry.js';
import type { Holdings } from './holdings.js';
import { prefixEnd, type KeyLayout } from './keys.js';
import type { QueueReads } from './reads.js';
import { holdersOf } from './shared-turn.js';

/** What the operator calls read. */
export interface InspectParts {
  readonly calls: EtcdCalls;
  readonly layout: KeyLayout;
  readonly dirs: DirKeysCache;
  readonly reads: QueueReads;
  readonly holdings: Holdings;
}

/** The holders of `key`, with the number of waiters behind them, or `null` when free. */
export async function inspectLock(
  parts: InspectParts,
  key: string,
  signal?: AbortSignal,
): Promise<LockInfo | null> {
  const dir = parts.layout.lockDir(key);
  const queue = await parts.reads.queue(dir, 'inspect', signal);
  return lockInfo(parts, queue, key, dir);
}

/** The holders of every lock whose key starts with `prefix`, by key. */
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
  // Oldest entry first: each key's queue in order.
  const queues = new Map<string, IKeyValue[]>();
  for (const kv of kvs) {
    const key = layout.lockKeyOf(dirs.name(kv.key), kv);
    if (key === undefined) continue;
    const queue = queues.get(key);
    if (queue) queue.push(kv);
    else queues.set(key, [kv]);
  }
  return [...queues.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, queue]) => lockInfo(parts, queue, key, layout.lockDir(key))!);
}

/**
 * A lock's queue (own entries, oldest first) as a `LockInfo`: its holders (`holdersOf`), the
 * newest of them as the one holder, and the entries behind them as waiters. The time left is
 * known only for this backend's holdings.
 */
function lockInfo(
  parts: InspectParts,
  queue: readonly IKeyValue[],
  key: string,
  dir: string,
): LockInfo | null {
  const holders: HolderInfo[] = holdersOf(queue).map((kv) => holderInfo(parts, kv, dir));
  const newest = holders[holders.length - 1];
  if (!newest) return null;
  const head = readEntry(queue[0]!);
  return {
    key,
    token: newest.token,
    fence: newest.fence,
    remainingMs: newest.remainingMs,
    waiters: queue.length - holders.length,
    mode: head.mode,
    holders,
    ...(head.mode === 'shared' ? { limit: head.limit } : {}),
  };
}

function holderInfo(parts: InspectParts, kv: IKeyValue, dir: string): HolderInfo {
  const { token, mode } = readEntry(kv);
  const holding = parts.holdings.get(dir, token);
  const local =
    holding && !holding.done && holding.revision === kv.create_revision ? holding : undefined;
  return {
    token,
    fence: BigInt(kv.create_revision),
    remainingMs: local
      ? Math.max(0, Math.min(local.reapAt, local.entry.session.deadline) - Date.now())
      : null,
    mode,
  };
}
