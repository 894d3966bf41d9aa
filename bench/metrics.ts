/**
 * Pure statistics for the benchmarks: percentiles of latency samples, Jain's fairness index over
 * per-client counts, and the share of acquisitions won by the client that had just released.
 * Kept free of I/O so that `test/bench-metrics.test.ts` can check them exactly.
 */

/**
 * The `p`-th percentile (0–100) of `samples` by the nearest-rank method: the smallest sample such
 * that at least `p` % of all samples are less than or equal to it. `NaN` for no samples.
 *
 * @example percentile([5, 1, 3], 50) === 3
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return percentileOfSorted(sorted, p);
}

/** {@link percentile} for samples already sorted ascending (no copy, no sort). */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

/** The usual summary of a latency distribution, in the samples' unit. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** p50, p99, max and mean of `samples` (all `NaN` and count 0 when empty). */
export function summarize(samples: readonly number[]): LatencySummary {
  if (samples.length === 0) {
    return { count: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  }
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p99: percentileOfSorted(sorted, 99),
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
  };
}

/**
 * Jain's fairness index (Σx)² / (n·Σx²) over per-client allocations: 1 when every client got the
 * same, 1/n when one client got everything. 1 for all-zero counts (nobody was favoured); `NaN`
 * for no clients.
 *
 * @example jainIndex([10, 10, 10, 10]) === 1
 */
export function jainIndex(counts: readonly number[]): number {
  if (counts.length === 0) return Number.NaN;
  let sum = 0;
  let sumOfSquares = 0;
  for (const count of counts) {
    if (!(count >= 0)) throw new RangeError(`counts must be non-negative, got ${count}`);
    sum += count;
    sumOfSquares += count * count;
  }
  if (sumOfSquares === 0) return 1;
  return (sum * sum) / (counts.length * sumOfSquares);
}

/**
 * Share (0–1) of acquisitions won by the client that held the lock just before: over the
 * sequence of holders in grant order, the fraction of consecutive pairs with the same client.
 * A strict FIFO with several waiters gives 0; a lock that lets the releaser re-take it at once
 * gives close to 1. `NaN` when there are fewer than two acquisitions. Several sequences (separate
 * timed windows) are pooled without pairing the end of one with the start of the next.
 *
 * @example sameHolderShare([0, 0, 1, 2]) === 1 / 3
 */
export function sameHolderShare(...sequences: (readonly number[])[]): number {
  let same = 0;
  let pairs = 0;
  for (const holders of sequences) {
    for (let i = 1; i < holders.length; i++) {
      pairs++;
      if (holders[i] === holders[i - 1]) same++;
    }
  }
  return pairs === 0 ? Number.NaN : same / pairs;
}

/** Number of acquisitions per client id `0..clients-1` in a sequence of holders. */
export function countPerClient(holders: readonly number[], clients: number): number[] {
  const counts = new Array<number>(clients).fill(0);
  for (const holder of holders) {
    if (!Number.isInteger(holder) || holder < 0 || holder >= clients) {
      throw new RangeError(`holder id ${holder} is outside 0..${clients - 1}`);
    }
    counts[holder] = (counts[holder] as number) + 1;
  }
  return counts;
}
