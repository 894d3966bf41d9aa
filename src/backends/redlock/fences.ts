/**
 * Quorum fences. A per-node `INCR` is not monotonic across holders whose majorities differ (A
 * counts on nodes 1-3, B on 3-5: B may see a lower count). Instead, once the lock is won:
 *
 * 1. read the fence counter of a majority of nodes (any majority, not only the lock's);
 * 2. take the highest plus one, and write it to every node as `counter = max(counter, fence)`,
 *    waiting until a majority has it;
 * 3. grant only if the lease is still valid after that (the caller checks).
 *
 * Why it increases: the next holder B wins a quorum only after this holder's copies on a majority
 * have expired or been released, which (under the clock-drift bound Redlock assumes) is after
 * this holder's validity ended, so after step 2 had completed on a majority W. B's read (step 1)
 * is sent after B won, and any majority intersects W: B reads at least this fence and issues a
 * higher one. A node restarted without persistence forgets its counter: see `restartGuardMs`.
 */
import { FENCE_READ, FENCE_WRITE } from './scripts.js';
import type { NodeLink } from './node-link.js';
import { count, round, unavailable } from './rounds.js';

/** What a fence round needs. */
export interface FenceContext {
  readonly nodes: readonly NodeLink[];
  readonly quorum: number;
  /** The per-node counter's key. */
  readonly counterKey: string;
  readonly guardSeconds: number;
}

const YOUNG = -3;

/**
 * Issue the fence of a holding just won (steps 1-2 above).
 * @throws BackendUnavailableError when fewer than a majority could be read or written.
 */
export async function issueFence(
  context: FenceContext,
  lockKey: string,
  token: string,
  timeoutMs: number,
): Promise<bigint> {
  const { nodes, quorum, counterKey, guardSeconds } = context;
  const readable = (value: unknown) => value !== YOUNG;
  const reads = await round(
    nodes,
    timeoutMs,
    (node, signal) => node.run(FENCE_READ, [counterKey], [guardSeconds], { signal }),
    (votes) => count(votes, readable) >= quorum,
  );
  if (count(reads, readable) < quorum) throw unavailable('fence read', reads, quorum);
  let highest = 0n;
  for (const vote of reads) {
    if (vote?.ok && readable(vote.value)) {
      const value = BigInt(String(vote.value));
      if (value > highest) highest = value;
    }
  }
  const fence = highest + 1n;
  const writes = await round(
    nodes,
    timeoutMs,
    (node, signal) =>
      node.run(FENCE_WRITE, [counterKey, lockKey], [fence.toString(), token], { signal }),
    (votes) => count(votes, (value) => value === 1) >= quorum,
  );
  if (count(writes, (value) => value === 1) < quorum) {
    throw unavailable('fence write', writes, quorum);
  }
  return fence;
}
