/**
 * The history checker on hand-made histories: each check finds what it must (so a clean report
 * means something) and leaves alone what the lock never promised (a stopped holder's signal).
 */
import { describe, expect, it } from 'vitest';
import { checkHistory } from './checker.js';
import type { FaultEvent, HistoryEvent, WorkerEvent } from './history.js';

type Body<E> = E extends WorkerEvent ? Omit<E, 'slot' | 'gen'> : never;
const by = (slot: number, event: Body<WorkerEvent>) => ({ slot, gen: 0, ...event }) as WorkerEvent;

/** One clean loop iteration of `slot` holding `fence` from `t` to `t + 10`. */
function iteration(slot: number, fence: string, t: number, element = `${slot}.0.${t}:${fence}`) {
  return [
    by(slot, { type: 'acquired', t0: t - 1, t1: t, fence, deadline: t + 1_000 }),
    by(slot, { type: 'read', t0: t + 1, t1: t + 2, fence, outcome: 'ok', size: 0 }),
    by(slot, { type: 'write-start', fence, t: t + 5 }),
    by(slot, { type: 'write', t0: t + 5, t1: t + 6, fence, element, outcome: 'ok' }),
    by(slot, { type: 'released', t0: t + 8, t1: t + 10, fence, outcome: 'released' }),
  ];
}

const check = (history: HistoryEvent[], final: string[]) =>
  checkHistory({ history, final, ttlMs: 1_000, livenessMarginMs: 1_000, endedAt: 100_000 });

describe('checkHistory', () => {
  it('a clean history has no violation', () => {
    const history = [...iteration(0, '1', 100), ...iteration(1, '2', 200)];
    const result = check(history, ['0.0.100:1', '1.0.200:2']);
    expect(result.violations).toBe(0);
    expect(result.operations).toBe(2);
    expect(result.writesAcknowledged).toBe(2);
  });

  it('an acknowledged element missing from the record is a lost update; fences out of order are counted', () => {
    const history = [
      ...iteration(0, '1', 100),
      ...iteration(1, '2', 200),
      ...iteration(0, '3', 300),
    ];
    const result = check(history, ['0.0.300:3', '0.0.100:1']);
    expect(result.lostUpdates).toBe(1);
    expect(result.lostExamples).toEqual(['1.0.200:2']);
    expect(result.fenceOrderViolations).toBe(1);
    expect(result.violations).toBe(2);
  });

  it('a grant before a running holder released, lost or reached its deadline is a double grant', () => {
    const holder = iteration(0, '1', 100).filter((e) => e.type !== 'released');
    const history = [
      ...holder,
      by(0, { type: 'released', t0: 600, t1: 601, fence: '1', outcome: 'not-owner' }),
      ...iteration(1, '2', 500),
    ];
    const result = check(history, ['0.0.100:1', '1.0.500:2']);
    expect(result.exclusionViolations).toBe(1);
    expect(result.exclusionExamples[0]).toMatch(/fence 2 granted 600\.0 ms before fence 1/);
  });

  it('a holder paused over its deadline is exempt (the fences cover it); a running one whose signal fired late is reported', () => {
    const paused = iteration(0, '1', 100).filter((e) => e.type !== 'released');
    const pause: FaultEvent = {
      type: 'fault',
      kind: 'holder-pause',
      target: 'slot 0',
      t0: 110,
      t1: 2_500,
      slot: 0,
      gen: 0,
      fence: '1',
      landed: true,
    };
    const exempt = check([...paused, pause, ...iteration(1, '2', 1_200)], ['1.0.1200:2']);
    expect(exempt.exclusionViolations).toBe(0);
    expect(exempt.lateLossSignals).toBe(0);

    const late = by(0, { type: 'lost', fence: '1', reason: 'expired', t: 1_230 });
    const running = check([...paused, late, ...iteration(1, '2', 1_200)], ['1.0.1200:2']);
    expect(running.exclusionViolations).toBe(0);
    expect(running.lateLossSignals).toBe(1);
    expect(running.worstLossSignalLateMs).toBeCloseTo(30);
  });

  it('a grant that reached its holder after its deadline never counts as valid', () => {
    const stale = by(0, { type: 'acquired', t0: 0, t1: 2_000, fence: '1', deadline: 990 });
    const result = check([stale, ...iteration(1, '2', 2_100)], ['1.0.2100:2']);
    expect(result.exclusionViolations).toBe(0);
  });

  it('a killed holder whose lock a waiting worker did not get within TTL + margin is a liveness violation', () => {
    const holder = iteration(0, '1', 100).slice(0, 2);
    const kill: FaultEvent = {
      type: 'fault',
      kind: 'holder-kill',
      target: 'slot 0',
      t0: 150,
      t1: 150,
      slot: 0,
      gen: 0,
    };
    /** Worker 1 asks at `askedAt` and gets the lock at `t`. */
    const contender = (askedAt: number, t: number) =>
      iteration(1, '2', t).map((e) => (e.type === 'acquired' ? { ...e, t0: askedAt } : e));
    const slow = check([...holder, kill, ...contender(120, 2_300)], ['1.0.2300:2']);
    expect(slow.livenessViolations).toBe(1);
    expect(slow.worstKillRecoveryMs).toBeCloseTo(2_150);
    const fast = check([...holder, kill, ...contender(120, 1_200)], ['1.0.1200:2']);
    expect(fast.livenessViolations).toBe(0);
    expect(fast.faults).toEqual({ 'holder-kill': 1 });
    // A contender that only asked later (a process still starting) is timed from its request.
    const late = check([...holder, kill, ...contender(5_000, 5_300)], ['1.0.5300:2']);
    expect(late.livenessViolations).toBe(0);
    expect(late.worstKillRecoveryMs).toBeCloseTo(300);
    // A contender that asked before the kill and timed out meanwhile is timed from its first ask.
    const timedOut = by(1, { type: 'acquire-failed', t0: 120, t1: 4_980, code: 'TIMEOUT' });
    const retried = check([...holder, kill, timedOut, ...contender(5_000, 5_300)], ['1.0.5300:2']);
    expect(retried.livenessViolations).toBe(1);
    expect(retried.worstKillRecoveryMs).toBeCloseTo(5_150);
  });
});
