import { describe, expect, it } from 'vitest';
import {
  countPerClient,
  jainIndex,
  percentile,
  percentileOfSorted,
  sameHolderShare,
  summarize,
} from '../bench/metrics.js';
import type { Contender, ContenderRole, LockClient } from '../bench/contenders/contender.js';
import { checkTargets, type StoreResults } from '../bench/report.js';
import { parseDuration } from '../bench/options.js';
import { runContended, type ContendedResult } from '../bench/scenarios/contended.js';
import { lateReaders, LATE_MARGIN_MS, mixedPlan } from '../bench/scenarios/kinds.js';
import type { CounterFactory } from '../bench/scenarios/counter.js';

describe('percentile (nearest rank)', () => {
  it('picks the smallest sample with at least p % of samples at or below it', () => {
    const samples = [5, 1, 4, 2, 3];
    expect(percentile(samples, 0)).toBe(1);
    expect(percentile(samples, 20)).toBe(1);
    expect(percentile(samples, 21)).toBe(2);
    expect(percentile(samples, 50)).toBe(3);
    expect(percentile(samples, 100)).toBe(5);
  });

  it('gives p99 of 1..100 as 99 and of 1..1000 as 990', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    const thousand = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentileOfSorted(thousand, 99)).toBe(990);
  });

  it('does not reorder its input and is NaN for no samples', () => {
    const samples = [3, 1, 2];
    percentile(samples, 50);
    expect(samples).toEqual([3, 1, 2]);
    expect(percentile([], 50)).toBeNaN();
  });

  it('rejects a percentile outside 0..100', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('summarize', () => {
  it('reports count, p50, p99, max and mean', () => {
    const samples = Array.from({ length: 200 }, (_, i) => 200 - i); // 200..1, unsorted
    expect(summarize(samples)).toEqual({ count: 200, p50: 100, p99: 198, max: 200, mean: 100.5 });
  });

  it('is all NaN for no samples', () => {
    const empty = summarize([]);
    expect(empty.count).toBe(0);
    expect(empty.p50).toBeNaN();
    expect(empty.max).toBeNaN();
  });
});

describe("Jain's fairness index", () => {
  it('is 1 for equal shares', () => {
    expect(jainIndex([7, 7, 7, 7, 7, 7, 7, 7])).toBe(1);
  });

  it('is 1/n when one client gets everything', () => {
    expect(jainIndex([100, 0, 0, 0])).toBeCloseTo(0.25, 12);
  });

  it('matches (Σx)² / (n·Σx²) for uneven shares', () => {
    // (1+2+3)² / (3·(1+4+9)) = 36 / 42
    expect(jainIndex([1, 2, 3])).toBeCloseTo(36 / 42, 12);
    // the pilot's worst case from issue 4: 77 vs 3,827 acquisitions between two clients
    expect(jainIndex([77, 3827])).toBeCloseTo((3904 * 3904) / (2 * (77 * 77 + 3827 * 3827)), 12);
  });

  it('treats all-zero counts as fair, no clients as NaN, and rejects negatives', () => {
    expect(jainIndex([0, 0])).toBe(1);
    expect(jainIndex([])).toBeNaN();
    expect(() => jainIndex([1, -1])).toThrow(RangeError);
  });
});

describe('same-holder share', () => {
  it('is 0 for a round-robin (FIFO) order', () => {
    expect(sameHolderShare([0, 1, 2, 3, 0, 1, 2, 3])).toBe(0);
  });

  it('is 1 when the releaser always re-takes the lock', () => {
    expect(sameHolderShare([5, 5, 5, 5])).toBe(1);
  });

  it('counts consecutive pairs with the same holder', () => {
    // pairs: (0,0) same, (0,1), (1,1) same, (1,2) → 2 of 4
    expect(sameHolderShare([0, 0, 1, 1, 2])).toBe(0.5);
    expect(sameHolderShare([0, 0, 1, 2])).toBeCloseTo(1 / 3, 12);
  });

  it('pools several windows without pairing the end of one with the start of the next', () => {
    // window 1: (0,0) same; window 2: (1,2) — the 0→1 boundary is not a pair
    expect(sameHolderShare([0, 0], [1, 2])).toBe(0.5);
    expect(sameHolderShare([0], [0])).toBeNaN();
  });

  it('is NaN with fewer than two acquisitions', () => {
    expect(sameHolderShare([])).toBeNaN();
    expect(sameHolderShare([3])).toBeNaN();
  });
});

describe('countPerClient', () => {
  it('counts acquisitions per client id, zero for clients never served', () => {
    expect(countPerClient([0, 2, 2, 0, 2], 4)).toEqual([2, 0, 3, 0]);
  });

  it('rejects ids outside the client range', () => {
    expect(() => countPerClient([4], 4)).toThrow(RangeError);
    expect(() => countPerClient([-1], 4)).toThrow(RangeError);
  });
});

describe('parseDuration (--duration)', () => {
  it('reads ms, s, m and bare milliseconds', () => {
    expect(parseDuration('5s')).toBe(5_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1_500);
    expect(parseDuration('1m')).toBe(60_000);
    expect(parseDuration('800')).toBe(800);
  });

  it('rejects nonsense and out-of-range values', () => {
    expect(() => parseDuration('fast')).toThrow(/--duration/);
    expect(() => parseDuration('5 h')).toThrow(/--duration/);
    expect(() => parseDuration('10ms')).toThrow(/between/);
  });
});

describe('B2 correctness check (runContended)', () => {
  // In-process stand-ins: a counter whose get/set yield to the event loop like a network call,
  // and two "locks" — one that excludes (a promise chain), one that lets everybody in.
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
  const memoryCounter = (): CounterFactory => {
    let value = 0;
    return async () => ({
      get: async () => (await tick(), value),
      set: async (next: number) => {
        await tick();
        value = next;
      },
      close: async () => {},
    });
  };
  const fakeLock = (excludes: boolean): Contender => {
    let tail = Promise.resolve();
    return {
      name: excludes ? 'fifo promise chain' : 'no lock at all',
      role: 'peer',
      excludes: true,
      tuned: false,
      settings: '',
      createClient: async (): Promise<LockClient<() => void>> => ({
        async acquire() {
          if (!excludes) return () => {};
          let release!: () => void;
          const previous = tail;
          tail = new Promise<void>((resolve) => (release = resolve));
          await previous;
          return release;
        },
        async release(release) {
          release();
        },
        close: async () => {},
      }),
    };
  };
  const options = (counter: CounterFactory) => ({
    clients: 4,
    durationMs: 150,
    drainMs: 1_000,
    key: 'k',
    counterKey: 'c',
    counter,
  });

  it('passes a lock that excludes, with FIFO fairness figures', async () => {
    const result = await runContended(fakeLock(true), options(memoryCounter()));
    expect(result.correct).toBe(true);
    expect(result.overlaps).toBe(0);
    expect(result.counter).toBe(result.sections);
    expect(result.sections).toBeGreaterThan(10);
    expect(result.sameHolder).toBe(0);
    expect(result.jain).toBeGreaterThan(0.95);
  });

  it('counts failed calls instead of ending the run, and asks again', async () => {
    const inner = fakeLock(true);
    let calls = 0;
    const flaky: Contender = {
      ...inner,
      name: 'flaky',
      async createClient() {
        const client = await inner.createClient();
        return {
          ...client,
          acquire: async (key: string) => {
            if (++calls < 30 && calls % 10 === 3) throw new Error('command timed out');
            return client.acquire(key);
          },
        };
      },
    };
    const result = await runContended(flaky, options(memoryCounter()));
    expect(result.errors).toBe(3);
    expect(result.firstError).toBe('Error: command timed out');
    expect(result.giveUps).toBe(0);
    expect(result.correct).toBe(true);
  });

  it('fails a "lock" that lets clients overlap: lost increments and overlaps are reported', async () => {
    const result = await runContended(fakeLock(false), options(memoryCounter()));
    expect(result.correct).toBe(false);
    expect(result.overlaps).toBeGreaterThan(0);
    expect(result.counter).toBeLessThan(result.sections);
  });
});

describe('target checks (checkTargets)', () => {
  const b1Row = (name: string, role: 'distlock' | 'floor', p50Us: number) => ({
    name,
    role,
    tuned: false,
    pairs: 100,
    p50Us,
    p99Us: p50Us,
    meanUs: p50Us,
    opsPerSec: 1e6 / p50Us,
    giveUps: 0,
    errors: 0,
  });
  const b2Row = (
    name: string,
    role: ContenderRole,
    tuned: boolean,
    opsPerSec: number,
    waitP99Ms: number,
    waitMaxMs: number,
  ): ContendedResult => ({
    name,
    role,
    tuned,
    clients: 8,
    durationMs: 5000,
    rounds: 2,
    opsPerSec,
    waitP50Ms: waitP99Ms / 2,
    waitP99Ms,
    waitMaxMs,
    perClient: [1, 1],
    jain: 1,
    sameHolder: 0,
    giveUps: 0,
    errors: 0,
    sections: 10,
    counter: 10,
    overlaps: 0,
    correct: true,
  });
  const results: StoreResults = {
    store: 'redis',
    floor: 'floor',
    b1: [b1Row('floor', 'floor', 100), b1Row('distlock', 'distlock', 110)],
    b2: [
      b2Row('distlock', 'distlock', false, 3000, 6, 9),
      b2Row('peer tuned', 'peer', true, 2500, 50, 150),
      b2Row('peer defaults', 'peer', false, 2600, 0.3, 2000),
      b2Row('fair floor', 'floor', false, 3300, 4, 16),
    ],
    b2Reference: 'tuned',
    b2Bound: { row: 'fair floor', label: 'FIFO floor' },
  };

  it("checks B2 against the best tuned peer and shows the bound row's figure beside each", () => {
    const checks = checkTargets(results);
    const byTarget = (prefix: string) => checks.find((c) => c.target.startsWith(prefix));
    expect(byTarget('B1 p50')?.met).toBe(true);
    expect(byTarget('B2 ops/s')).toMatchObject({
      met: true,
      measured: '3,000 ops/s (limit 2,500 ops/s); FIFO floor 3,300 ops/s',
    });
    expect(byTarget('B2 p99')).toMatchObject({
      met: false,
      measured: '6.0 ms (limit 5.0 ms); FIFO floor 4.0 ms',
    });
    expect(byTarget('B2 max')).toMatchObject({
      met: true,
      measured: '9.0 ms (limit 15.0 ms); FIFO floor 16.0 ms',
    });
  });

  it('checks etcd against 3x etcd3 Lock and its p99 only, beside the ceiling', () => {
    const checks = checkTargets({
      ...results,
      store: 'etcd',
      b2Reference: 'any',
      b2Bound: { row: 'fair floor', label: 'ceiling' },
    });
    const b2 = checks.filter((c) => c.target.startsWith('B2 ops') || c.target.includes('wait'));
    expect(b2).toMatchObject([
      {
        target: 'B2 ops/s ≥ 3x etcd3 Lock',
        measured: '3,000 ops/s (limit 7,800 ops/s); ceiling 3,300 ops/s',
        met: false,
      },
      {
        target: 'B2 p99 wait ≤ etcd3 Lock / 10',
        measured: '6.0 ms (limit 0.0 ms); ceiling 4.0 ms',
        met: false,
      },
    ]);
  });

  it('shows no note without a bound row', () => {
    const checks = checkTargets({ ...results, b2Bound: undefined });
    expect(checks.find((c) => c.target.startsWith('B2 ops/s'))?.measured).toBe(
      '3,000 ops/s (limit 2,500 ops/s)',
    );
  });
});

describe('lock-kind metrics', () => {
  const op = (kind: 'read' | 'write', askedAt: number, grantedAt: number) => ({
    kind,
    askedAt,
    grantedAt,
  });

  it('counts, per writer, the readers that asked after it (beyond the margin) and got in first', () => {
    const late = LATE_MARGIN_MS + 1;
    const ops = [
      op('write', 10, 50),
      op('read', 5, 20), // asked before the writer: ahead of it, fine
      op('read', 10 + late, 30), // asked after, in before: late
      op('read', 10 + late + 1, 40), // late
      op('read', 10 + late + 2, 60), // asked after, in after: fine
      op('read', 10 + LATE_MARGIN_MS / 2, 15), // concurrent with the writer: not counted
      op('write', 100, 101),
    ];
    expect(lateReaders(ops)).toEqual({ max: 2, writersPassed: 1, writers: 2 });
    expect(lateReaders(ops.filter((o) => o.kind === 'read'))).toEqual({
      max: 0,
      writersPassed: 0,
      writers: 0,
    });
  });

  it('plans the same mix for every contender, about the share asked', () => {
    const plan = mixedPlan(0.1);
    const kinds = Array.from({ length: 8 }, (_, client) =>
      Array.from({ length: 1000 }, (_, i) => plan(client, i)),
    );
    expect(kinds).toEqual(
      Array.from({ length: 8 }, (_, client) =>
        Array.from({ length: 1000 }, (_, i) => mixedPlan(0.1)(client, i)),
      ),
    );
    const writes = kinds.flat().filter((kind) => kind === 'write').length;
    expect(writes / 8000).toBeGreaterThan(0.08);
    expect(writes / 8000).toBeLessThan(0.12);
  });
});
