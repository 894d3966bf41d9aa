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
 * higher one.
 *
 * A node restarted without persistence has no counter (not a zero one): it does not count towards
 * the read majority, which must be a majority of nodes *with* a counter, unless every node
 * answered (then the read saw every surviving copy; all without a counter is a new deployment).
 * With fewer than a majority of nodes losing their state since a fence was written to a
 * majority W, at least one node of W keeps a counter at least that fence, and any majority of
 * nodes with a counter includes a node of W (a node of W that restarted since holds a counter
 * only once a later, larger fence was written to it). The cost of that rule: a new deployment
 * with a node down cannot issue its first fence until every node answers (the error says so).
 */
import { BackendUnavailableError } from '../../core/errors.js';
import type { NodeLink } from './node-link.js';
import {
  count,
  firstError,
  NodeTimeoutError,
  onlyTimeouts,
  round,
  unavailable,
  type Votes,
} from './rounds.js';
import { FENCE_READ, FENCE_WRITE } from './scripts.js';

/** What a fence round needs. */
export interface FenceContext {
  readonly nodes: readonly NodeLink[];
  readonly quorum: number;
  /** The per-node counter's key. */
  readonly counterKey: string;
}

/** A node without a counter (see the module doc). */
const UNSET = -1;

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
  const { nodes, quorum, counterKey } = context;
  const isSet = (value: unknown) => value !== UNSET;
  const enough = (votes: Votes<unknown>) =>
    count(votes, isSet) >= quorum || count(votes, () => true) === votes.length;
  const reads = await round(
    nodes,
    timeoutMs,
    (node, signal) => node.run(FENCE_READ, [counterKey], [], { signal }),
    enough,
  );
  if (!enough(reads)) {
    // Slow nodes, not missing ones: the caller tries again (see `onlyTimeouts`).
    if (onlyTimeouts(reads)) throw new NodeTimeoutError(timeoutMs);
    if (count(reads, () => true) >= quorum) {
      throw new BackendUnavailableError(
        `redlock fence read: fewer than ${quorum} nodes have a fence counter and not every node answered (nodes restarted without persistence, or a new deployment with a node down)`,
        { cause: firstError(reads) },
      );
    }
    throw unavailable('fence read', reads, quorum);
  }
  let highest = 0n;
  for (const vote of reads) {
    if (vote?.ok && isSet(vote.value)) {
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
    if (onlyTimeouts(writes)) throw new NodeTimeoutError(timeoutMs);
    throw unavailable('fence write', writes, quorum);
  }
  return fence;
}
