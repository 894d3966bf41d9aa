/**
 * B3, many keys: one client (one connection set) per contender keeps `inFlight` acquire+release
 * pairs in flight, each worker on its own key, so the lock's per-operation cost and pipelining
 * decide the rate, not waiting. Contenders run interleaved in rounds, like B1.
 */
import { performance } from 'node:perf_hooks';
import type { Contender, ContenderRole, LockClient } from '../contenders/contender.js';
import { ErrorTally } from './error-tally.js';

/** B3 figures of one contender. */
export interface ManyKeysResult {
  readonly name: string;
  readonly role: ContenderRole;
  readonly tuned: boolean;
  readonly inFlight: number;
  readonly pairs: number;
  readonly opsPerSec: number;
  readonly giveUps: number;
  /** Calls that failed (counted, not fatal) and the first failure. */
  readonly errors: number;
  readonly firstError?: string;
}

/** How to run B3. */
export interface ManyKeysOptions {
  readonly inFlight: number;
  readonly rounds: number;
  readonly roundMs: number;
  readonly keyPrefix: string;
}

interface Lane {
  readonly contender: Contender;
  readonly client: LockClient;
  readonly index: number;
  pairs: number;
  busyMs: number;
  giveUps: number;
  readonly errors: ErrorTally;
}

async function runRound(lane: Lane, options: ManyKeysOptions): Promise<void> {
  const started = performance.now();
  const deadline = started + options.roundMs;
  const worker = async (slot: number): Promise<void> => {
    const key = `${options.keyPrefix}b3:${lane.index}:${slot}`;
    while (performance.now() < deadline) {
      try {
        const handle = await lane.client.acquire(key);
        if (handle === null) {
          lane.giveUps++;
          continue;
        }
        await lane.client.release(handle);
        lane.pairs++;
      } catch (error) {
        lane.errors.record(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, (_, slot) => worker(slot)));
  lane.busyMs += performance.now() - started;
}

/** Run B3 for all `contenders`, interleaved in rounds. */
export async function runManyKeys(
  contenders: readonly Contender[],
  options: ManyKeysOptions,
): Promise<ManyKeysResult[]> {
  const lanes: Lane[] = [];
  try {
    for (const [index, contender] of contenders.entries()) {
      lanes.push({
        contender,
        client: await contender.createClient(),
        index,
        pairs: 0,
        busyMs: 0,
        giveUps: 0,
        errors: new ErrorTally(contender.name),
      });
    }
    // Warm-up: connections, script caches, JIT.
    for (const lane of lanes)
      await runRound(lane, { ...options, roundMs: Math.min(200, options.roundMs) });
    for (const lane of lanes) Object.assign(lane, { pairs: 0, busyMs: 0, giveUps: 0 });
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < lanes.length; i++) {
        await runRound(lanes[(round + i) % lanes.length] as Lane, options);
      }
    }
    return lanes.map((lane) => ({
      name: lane.contender.name,
      role: lane.contender.role,
      tuned: lane.contender.tuned,
      inFlight: options.inFlight,
      pairs: lane.pairs,
      opsPerSec: lane.pairs / (lane.busyMs / 1000),
      giveUps: lane.giveUps,
      errors: lane.errors.count,
      ...(lane.errors.first ? { firstError: lane.errors.first } : {}),
    }));
  } finally {
    await Promise.all(lanes.map((lane) => lane.client.close()));
  }
}
