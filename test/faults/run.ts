/**
 * One run of the fault suite: a backend's servers, N worker processes looping on one lock over a
 * record in a separate store, a schedule of faults injected one after the other with quiet periods
 * between them, and the history checked at the end.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../harness/process.js';
import { checkHistory, type CheckResult } from './checker.js';
import type { FaultKind } from './faults.js';
import { monotonicMs, type HistoryEvent } from './history.js';
import { Injector } from './injector.js';
import { Links } from './links.js';
import { openRecord, type RecordConfig } from './record.js';
import type { BackendSetup } from './setups.js';
import { Workers } from './workers.js';

export interface RunOptions {
  readonly setup: BackendSetup;
  /** Fenced writes through the guards, or none. */
  readonly fenced: boolean;
  /** The faults, in order. */
  readonly schedule: readonly FaultKind[];
  /** Worker processes. @default 4 */
  readonly workers?: number;
  /** Where the record lives: a Redis server the suite never faults (its URL), or a directory. */
  readonly record: { readonly kind: 'redis'; readonly url: string } | { readonly kind: 'file' };
  /** Quiet time before each fault and after the last, ms. @default the TTL */
  readonly quietMs?: number;
  /** Progress lines. @default none */
  readonly log?: (line: string) => void;
}

export interface RunResult {
  readonly check: CheckResult;
  readonly history: readonly HistoryEvent[];
  readonly final: readonly string[];
  readonly durationMs: number;
  /** Faults of the schedule that found no target (e.g. no holder in time). */
  readonly missed: readonly FaultKind[];
}

/** Run `options.schedule` on a fresh deployment and check the history. */
export async function runFaults(options: RunOptions): Promise<RunResult> {
  const started = monotonicMs();
  const ttlMs = options.setup.ttlMs ?? 1_000;
  const livenessMarginMs = options.setup.livenessMarginMs ?? 1_000;
  const quietMs = options.quietMs ?? ttlMs;
  const log = options.log ?? (() => undefined);
  const dir = tempDir('distlock-faults-');
  const links = new Links();
  const history: HistoryEvent[] = [];
  const id = randomBytes(4).toString('hex');
  const record: RecordConfig =
    options.record.kind === 'redis'
      ? { kind: 'redis', url: options.record.url, key: `faults:record:${id}` }
      : { kind: 'file', path: `${dir.path}/record` };
  const deployment = await options.setup.start({ dir: dir.path, links });
  const workers = new Workers(history, async (slot, gen) => {
    const backend = await deployment.backend(slot);
    return {
      slot,
      gen,
      backendModule: backend.module,
      backendEnv: backend.env,
      key: `faults/${id}`,
      ttlMs,
      fenced: options.fenced,
      record,
      workMs: [5, 25],
    };
  });
  const missed: FaultKind[] = [];
  try {
    await workers.start(options.workers ?? 4);
    await warmUp(workers);
    log(`  warm after ${((monotonicMs() - started) / 1000).toFixed(1)} s`);
    const recoveryBoundMs = ttlMs + livenessMarginMs;
    const injector = new Injector({ workers, deployment, links, ttlMs, recoveryBoundMs, history });
    for (const kind of options.schedule) {
      await sleep(quietMs);
      const at = monotonicMs();
      if (!(await injector.inject(kind))) missed.push(kind);
      log(`  ${kind}: ${((monotonicMs() - at) / 1000).toFixed(1)} s`);
    }
    await sleep(quietMs);
    log(`  faults done after ${((monotonicMs() - started) / 1000).toFixed(1)} s`);
    await workers.stop();
    log(`  stopped after ${((monotonicMs() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    await workers.kill();
    await links.close();
    await deployment.stop();
    dir.remove();
    throw Object.assign(error as Error, {
      workers: workers.slots.map((s) => `slot ${s.slot}: ${s.stderr}`).join('\n'),
    });
  }
  await links.close();
  const endedAt = monotonicMs();
  const store = openRecord(record);
  const final = await store.peek();
  await store.close();
  await deployment.stop();
  dir.remove();
  const check = checkHistory({ history, final, ttlMs, livenessMarginMs, endedAt });
  return { check, history, final, durationMs: endedAt - started, missed };
}

/**
 * Wait until every worker has started and the lock was taken a few times (store reachable):
 * faults measure the lock, not how long a process takes to start.
 */
async function warmUp(workers: Workers): Promise<void> {
  const deadline = Date.now() + 60_000;
  const started = () => workers.slots.every((slot) => slot.phase !== 'starting');
  while (!started() || workers.acquisitions < workers.slots.length * 2) {
    if (Date.now() > deadline) {
      const why = workers.slots.map((s) => `slot ${s.slot}: ${s.stderr}`).join('\n');
      throw new Error(`workers did not get going within 60 s:\n${why}`);
    }
    await sleep(50);
  }
}
