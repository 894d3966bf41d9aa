/**
 * The history checker. From the workers' and the injector's events and the record's final
 * contents it checks:
 *
 * - **mutual exclusion as the resource saw it**: every write the record acknowledged is in the
 *   final list (each element is unique and every write appends to what its read returned, so an
 *   acknowledged element that is missing was overwritten by a write based on an older read: a lost
 *   update), and the fences in the list strictly increase (the record accepted the holders' writes
 *   in fence order);
 * - **the lock's promise**: each holder's loss signal fired (or it had released) before another
 *   holder's acquire completed — except for holders stopped by a fault (paused or killed): a
 *   stopped process runs no timers, which is what fences are for. A grant before a running
 *   holder's local deadline is a double grant (a violation); one after the deadline but before
 *   its signal fired is a late loss signal (its timer ran late; reported);
 * - **liveness**: after a holder is killed, the lock is taken again within TTL + the backend's
 *   margin (counted from the kill, or from the next holder's request if it came later).
 *
 * A write whose outcome the worker could not learn (an error, or the worker killed mid-write) is
 * counted as indeterminate, never as acknowledged.
 */
import type { FaultKind } from './faults.js';
import type { FaultEvent, HistoryEvent, WorkerEvent } from './history.js';
import { fenceOf } from './record.js';

type Of<T extends WorkerEvent['type']> = Extract<WorkerEvent, { type: T }>;

/** What one run showed. */
export interface CheckResult {
  /** Successful lock acquisitions. */
  readonly operations: number;
  readonly writesAcknowledged: number;
  readonly writesIndeterminate: number;
  /** Reads and writes the guard refused as stale. */
  readonly staleRefused: { readonly reads: number; readonly writes: number };
  /** Acknowledged writes missing from the final record. */
  readonly lostUpdates: number;
  readonly lostExamples: readonly string[];
  /** Places in the final record where a fence does not exceed the one before it. */
  readonly fenceOrderViolations: number;
  /** Grants to another worker before a running holder's deadline (nor released, nor lost). */
  readonly exclusionViolations: number;
  readonly exclusionExamples: readonly string[];
  /** Loss signals that fired after another holder's acquire completed, or never (holder not paused). */
  readonly lateLossSignals: number;
  readonly worstLossSignalLateMs: number;
  /** Holder kills after which the lock was not taken again within TTL + margin. */
  readonly livenessViolations: number;
  /** The longest a killed holder kept the lock from a waiting worker. */
  readonly worstKillRecoveryMs: number;
  /** The longest wait, after any fault ended, until the lock was granted again. */
  readonly worstRecoveryMs: number;
  readonly worstRecoveryKind: FaultKind | undefined;
  /** Faults injected (holder pauses: those that landed between read and write), by kind. */
  readonly faults: Readonly<Partial<Record<FaultKind, number>>>;
  /** All violations: lost updates, fence order, exclusion, liveness. */
  readonly violations: number;
}

export interface CheckInput {
  readonly history: readonly HistoryEvent[];
  /** The record's elements at the end. */
  readonly final: readonly string[];
  readonly ttlMs: number;
  readonly livenessMarginMs: number;
  /** Monotonic time the run ended (workers stopped). */
  readonly endedAt: number;
}

const who = (e: { slot: number; gen: number }) => `${e.slot}.${e.gen}`;

export function checkHistory(input: CheckInput): CheckResult {
  const { history, final } = input;
  const events = history.filter((e): e is WorkerEvent => e.type !== 'fault');
  const faults = history.filter((e): e is FaultEvent => e.type === 'fault');
  const of = <T extends WorkerEvent['type']>(type: T) =>
    events.filter((e): e is Of<T> => e.type === type);

  const writes = of('write');
  const acknowledged = writes.filter((w) => w.outcome === 'ok');
  const present = new Set(final);
  const lost = acknowledged.filter((w) => !present.has(w.element));

  let fenceOrderViolations = 0;
  for (let i = 1; i < final.length; i += 1) {
    if (fenceOf(final[i]!) <= fenceOf(final[i - 1]!)) fenceOrderViolations += 1;
  }

  const lock = checkLeases(of('acquired'), of('released'), of('lost'), faults, input);
  const liveness = checkLiveness(of('acquired'), of('acquire-failed'), faults, input);

  const count: Partial<Record<FaultKind, number>> = {};
  for (const fault of faults) {
    if (fault.kind === 'holder-pause' && !fault.landed) continue;
    const kind = fault.kind as FaultKind;
    count[kind] = (count[kind] ?? 0) + 1;
  }

  return {
    operations: of('acquired').length,
    writesAcknowledged: acknowledged.length,
    writesIndeterminate:
      writes.filter((w) => w.outcome === 'error').length + unfinishedWrites(events),
    staleRefused: {
      reads: of('read').filter((r) => r.outcome === 'stale').length,
      writes: writes.filter((w) => w.outcome === 'stale').length,
    },
    lostUpdates: lost.length,
    lostExamples: lost.slice(0, 5).map((w) => w.element),
    fenceOrderViolations,
    ...lock,
    ...liveness,
    faults: count,
    violations:
      lost.length + fenceOrderViolations + lock.exclusionViolations + liveness.livenessViolations,
  };
}

/** Writes announced but never answered (the worker was killed in between). */
function unfinishedWrites(events: readonly WorkerEvent[]): number {
  const answered = new Set(
    events.filter((e) => e.type === 'write').map((e) => `${who(e)}:${e.fence}`),
  );
  return events.filter((e) => e.type === 'write-start' && !answered.has(`${who(e)}:${e.fence}`))
    .length;
}

/**
 * The lock's promise, lease by lease: when the store granted the key to another worker, the
 * holder had released it, or its loss signal had fired, or — stopped by a fault (paused or killed),
 * so that it could fire nothing — it is exempt: that case is the fences' job. A grant before the
 * holder's local deadline, to a running holder, is a double grant; a grant after the deadline but
 * before the signal fired is a late loss signal (its timer ran late: event-loop delay).
 */
function checkLeases(
  acquired: readonly Of<'acquired'>[],
  released: readonly Of<'released'>[],
  lostSignals: readonly Of<'lost'>[],
  faults: readonly FaultEvent[],
  input: CheckInput,
) {
  const releaseOf = new Map(released.map((r) => [`${who(r)}:${r.fence}`, r.t0]));
  const lossOf = new Map(lostSignals.map((l) => [`${who(l)}:${l.fence}`, l.t]));
  // A grant that reached its holder after its deadline (a stalled link) was never valid.
  const valid = acquired.filter((a) => a.deadline > a.t1).sort((x, y) => x.t1 - y.t1);
  const exclusionExamples: string[] = [];
  let exclusionViolations = 0;
  let lateLossSignals = 0;
  let worstLossSignalLateMs = 0;
  for (const lease of valid) {
    const next = valid.find((n) => n.t1 > lease.t1 && who(n) !== who(lease));
    if (!next) continue;
    const grantedAt = next.t1;
    const id = `${who(lease)}:${lease.fence}`;
    if ((releaseOf.get(id) ?? Infinity) <= grantedAt) continue;
    const firedAt = lossOf.get(id) ?? input.endedAt; // never: as late as it gets
    if (firedAt <= grantedAt) continue;
    const dueAt = Math.min(lease.deadline, grantedAt);
    if (stoppedBetween(lease, dueAt, grantedAt, faults)) continue;
    if (lease.deadline > grantedAt) {
      exclusionViolations += 1;
      if (exclusionExamples.length < 5) {
        exclusionExamples.push(
          `fence ${next.fence} granted ${(lease.deadline - grantedAt).toFixed(1)} ms before fence ${lease.fence}'s deadline, its holder running`,
        );
      }
    } else {
      lateLossSignals += 1;
      worstLossSignalLateMs = Math.max(worstLossSignalLateMs, firedAt - grantedAt);
    }
  }
  return { exclusionViolations, exclusionExamples, lateLossSignals, worstLossSignalLateMs };
}

/** Whether the worker was paused or killed at some point in [from, to]. */
function stoppedBetween(
  worker: { slot: number; gen: number },
  from: number,
  to: number,
  faults: readonly FaultEvent[],
): boolean {
  return faults.some((f) => {
    if (f.slot !== worker.slot || f.gen !== worker.gen) return false;
    if (f.kind === 'holder-kill') return f.t0 <= to;
    return f.kind === 'holder-pause' && f.t0 <= to && f.t1 >= from;
  });
}

/** Liveness after holder kills, and the worst time to the next grant after any fault. */
function checkLiveness(
  acquired: readonly Of<'acquired'>[],
  failed: readonly Of<'acquire-failed'>[],
  faults: readonly FaultEvent[],
  input: CheckInput,
) {
  /** When the worker that got `grant` began asking: back through its failed attempts (timeouts). */
  const askedAt = (grant: Of<'acquired'>): number => {
    let start = grant.t0;
    for (;;) {
      const before = failed.find(
        (f) => who(f) === who(grant) && f.t1 <= start && f.t1 >= start - 1_000,
      );
      if (!before) return start;
      start = before.t0;
    }
  };
  const grants = [...acquired].sort((x, y) => x.t1 - y.t1);
  const nextGrant = (after: number) => grants.find((a) => a.t1 > after);
  let livenessViolations = 0;
  let worstKillRecoveryMs = 0;
  let worstRecoveryMs = 0;
  let worstRecoveryKind: FaultKind | undefined;
  const bound = input.ttlMs + input.livenessMarginMs;
  for (const fault of faults) {
    if (fault.kind === 'holder-pause' && !fault.landed) continue;
    // Holder faults count from their start (the holder stops holding for others then); the
    // rest from when they healed.
    const from = fault.kind.startsWith('holder-') ? fault.t0 : fault.t1;
    const grant = nextGrant(from);
    // From when someone asked: a contender that only started after the fault (a new process)
    // waited from its own request, not from the fault.
    const recovery = (grant?.t1 ?? input.endedAt) - Math.max(from, grant ? askedAt(grant) : from);
    if (fault.kind === 'holder-kill') {
      worstKillRecoveryMs = Math.max(worstKillRecoveryMs, recovery);
      // A run that ended before the bound had passed proves nothing either way.
      if (recovery > bound) livenessViolations += 1;
    }
    if (grant !== undefined && recovery > worstRecoveryMs) {
      worstRecoveryMs = recovery;
      worstRecoveryKind = fault.kind as FaultKind;
    }
  }
  return { livenessViolations, worstKillRecoveryMs, worstRecoveryMs, worstRecoveryKind };
}
