/**
 * B1, uncontended: one client per contender acquires and releases one key in a loop. Contenders
 * run interleaved in small chunks, round-robin with a rotating start, so that drift of a shared,
 * noisy machine hits all of them alike.
 */
import { performance } from 'node:perf_hooks';
import type { Contender, ContenderRole, LockClient } from '../contenders/contender.js';
import { summarize } from '../metrics.js';
import { ErrorTally } from './error-tally.js';

/** B1 figures of one contender. */
export interface UncontendedResult {
  readonly name: string;
  readonly role: ContenderRole;
  readonly tuned: boolean;
  readonly pairs: number;
  /** Latency of one acquire + release, in microseconds. */
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  /** Pairs per second of time spent in this contender's chunks. */
  readonly opsPerSec: number;
  readonly giveUps: number;
  /** Calls that failed (counted, not fatal) and the first failure. */
  readonly errors: number;
  readonly firstError?: string;
}

/** How long and in what steps to run B1. */
export interface UncontendedOptions {
  readonly budgetMs: number;
  readonly chunkOps: number;
  readonly warmupOps: number;
  readonly keyPrefix: string;
  readonly onProgress?: (line: string) => void;
}

interface Lane {
  readonly contender: Contender;
  readonly client: LockClient;
  readonly key: string;
  readonly samplesUs: number[];
  busyMs: number;
  giveUps: number;
  readonly errors: ErrorTally;
}

async function runChunk(lane: Lane, ops: number, record: boolean): Promise<void> {
  const started = performance.now();
  for (let i = 0; i < ops; i++) {
    const t0 = performance.now();
    try {
      const handle = await lane.client.acquire(lane.key);
      if (handle === null) {
        lane.giveUps++;
        continue;
      }
      await lane.client.release(handle);
    } catch (error) {
      lane.errors.record(error);
      continue;
    }
    if (record) lane.samplesUs.push((performance.now() - t0) * 1000);
  }
  if (record) lane.busyMs += performance.now() - started;
}

/** Run B1 for all `contenders` in one interleaved loop. */
export async function runUncontended(
  contenders: readonly Contender[],
  options: UncontendedOptions,
): Promise<UncontendedResult[]> {
  const lanes: Lane[] = [];
  try {
    for (const [index, contender] of contenders.entries()) {
      lanes.push({
        contender,
        client: await contender.createClient(),
        key: `${options.keyPrefix}b1:${index}`,
        samplesUs: [],
        busyMs: 0,
        giveUps: 0,
        errors: new ErrorTally(contender.name),
      });
    }
    for (const lane of lanes) await runChunk(lane, options.warmupOps, false);
    const deadline = performance.now() + options.budgetMs;
    let round = 0;
    while (performance.now() < deadline || round === 0) {
      for (let i = 0; i < lanes.length; i++) {
        await runChunk(lanes[(round + i) % lanes.length] as Lane, options.chunkOps, true);
      }
      round++;
    }
    options.onProgress?.(`B1: ${round} rounds of ${options.chunkOps} ops per contender`);
    return lanes.map((lane) => {
      const summary = summarize(lane.samplesUs);
      return {
        name: lane.contender.name,
        role: lane.contender.role,
        tuned: lane.contender.tuned,
        pairs: summary.count,
        p50Us: summary.p50,
        p99Us: summary.p99,
        meanUs: summary.mean,
        opsPerSec: summary.count / (lane.busyMs / 1000),
        giveUps: lane.giveUps,
        errors: lane.errors.count,
        ...(lane.errors.first ? { firstError: lane.errors.first } : {}),
      };
    });
  } finally {
    await Promise.all(lanes.map((lane) => lane.client.close()));
  }
}

/** B1 as both stores run it: the contenders interleaved for the run's budget, progress logged. */
export function runB1(
  store: string,
  contenders: readonly Contender[],
  budgetMs: number,
  chunks: Omit<UncontendedOptions, 'budgetMs' | 'onProgress'>,
  log: (line: string) => void,
): Promise<UncontendedResult[]> {
  log(`${store} B1: ${contenders.length} contenders interleaved for ${budgetMs / 1000} s`);
  return runUncontended(contenders, { ...chunks, budgetMs, onProgress: log });
}
