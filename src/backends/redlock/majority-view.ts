/**
 * What a majority of nodes says about a lock, for `inspect` and `list`: the token held on at
 * least a quorum of nodes (at most one token can be), its highest recorded fence, and the time
 * until it stops holding a quorum.
 */
import type { LockInfo } from '../../core/backend.js';

/** One node's copy of a lock. */
export interface NodeCopy {
  readonly token: string;
  readonly fence: bigint;
  /** The copy's PTTL (-1: no expiry, which the scripts never set). */
  readonly remainingMs: number;
}

/** The majority's holder of `key`, or null when no token holds a quorum of copies. */
export function majorityView(
  key: string,
  copies: readonly NodeCopy[],
  quorum: number,
): LockInfo | null {
  const byToken = new Map<string, NodeCopy[]>();
  for (const copy of copies) {
    const same = byToken.get(copy.token);
    if (same) same.push(copy);
    else byToken.set(copy.token, [copy]);
  }
  for (const [token, held] of byToken) {
    if (held.length < quorum) continue;
    let fence = 0n;
    for (const copy of held) if (copy.fence > fence) fence = copy.fence;
    // The holding keeps a quorum until the quorum-th longest-lived copy expires.
    const remaining = held.map((copy) => copy.remainingMs).sort((a, b) => b - a)[quorum - 1]!;
    return {
      key,
      token,
      fence,
      remainingMs: remaining >= 0 ? remaining : null,
      mode: 'exclusive',
      holders: [
        { token, fence, remainingMs: remaining >= 0 ? remaining : null, mode: 'exclusive' },
      ],
    };
  }
  return null;
}
