/**
 * What the contended scenarios (B2, B4–B6) share: clients that ask for a lock until they get it
 * (a give-up or a failed call asks again, a run that cannot drain is stuck), let go without
 * ending the run on a failed release, and configurations run interleaved in rounds with a
 * rotating start, so that drift of a shared, noisy machine hits all of them alike.
 */
import { performance } from 'node:perf_hooks';
import type { ContenderRole } from '../contenders/contender.js';
import type { ErrorTally } from './error-tally.js';

/** What every contended result says about its row and its windows. */
export interface RoundsResult {
  readonly name: string;
  readonly role: ContenderRole;
  readonly tuned: boolean;
  readonly clients: number;
  /** Timed window in all (the sum of the rounds). */
  readonly durationMs: number;
  readonly rounds: number;
  /** Acquisitions granted within the timed windows, per second. */
  readonly opsPerSec: number;
}

/** What a lane counts while its clients ask. */
export interface AskTally {
  readonly errors: ErrorTally;
  giveUps: number;
}

/**
 * Call `acquire` until it grants a handle. A give-up (`null`) is counted when `timed`, a failure
 * always (and asked again); past `stuckAt` (a `performance.now()` time) the run throws.
 */
export async function askUntilGranted<Handle>(
  acquire: () => Promise<Handle | null>,
  tally: AskTally,
  timed: boolean,
  stuckAt: number,
  who: string,
): Promise<Handle> {
  for (;;) {
    try {
      const handle = await acquire();
      if (handle !== null) return handle;
      if (timed) tally.giveUps++;
    } catch (error) {
      tally.errors.record(error);
    }
    if (performance.now() > stuckAt) throw new Error(`${who} could not acquire within the drain`);
  }
}

/** Let go of a holding; a failure is counted, not fatal (the lease expires by itself). */
export async function releaseCounted(release: () => Promise<void>, errors: ErrorTally) {
  try {
    await release();
  } catch (error) {
    errors.record(error);
  }
}

/** A configuration run in windows: timed ones, and an untimed warm-up before the first. */
export interface RoundLane<Result> {
  /** Timed windows run so far. */
  readonly rounds: number;
  /** Open its clients' connections. */
  open(): Promise<void>;
  window(durationMs: number, timed: boolean): Promise<void>;
  result(): Promise<Result>;
  close(): Promise<void>;
}

/**
 * Open `lanes`, run them interleaved in `rounds` and close them all (also on failure); results in
 * their order.
 */
export async function runInRounds<Result>(
  lanes: readonly RoundLane<Result>[],
  options: {
    readonly rounds: number;
    readonly durationMs: number;
    readonly warmupMs: number;
    readonly onResult?: ((result: Result) => void) | undefined;
  },
): Promise<Result[]> {
  try {
    for (const lane of lanes) await lane.open();
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < lanes.length; i++) {
        const lane = lanes[(round + i) % lanes.length]!;
        if (lane.rounds === 0 && options.warmupMs > 0) await lane.window(options.warmupMs, false);
        await lane.window(options.durationMs / options.rounds, true);
        if (lane.rounds === options.rounds) options.onResult?.(await lane.result());
      }
    }
    return await Promise.all(lanes.map((lane) => lane.result()));
  } finally {
    await Promise.all(lanes.map((lane) => lane.close()));
  }
}
