/**
 * B2, contended: `clients` clients (each with its own connections) loop on one key for a fixed
 * time: acquire → read-modify-write a counter in the store → release. Measures throughput, the
 * wait for each acquisition (from the first attempt to the grant, give-ups included), fairness
 * (per-client counts, Jain's index, same-holder share) and correctness (the counter equals the
 * number of critical sections, and no two clients were ever inside at once).
 */
import { performance } from 'node:perf_hooks';
import type { Contender, ContenderRole, LockClient } from '../contenders/contender.js';
import { jainIndex, sameHolderShare, summarize } from '../metrics.js';
import type { CounterClient, CounterFactory } from './counter.js';

/** B2 figures of one contender. */
export interface ContendedResult {
  readonly name: string;
  readonly role: ContenderRole;
  readonly tuned: boolean;
  readonly clients: number;
  readonly durationMs: number;
  /** Critical sections granted within the timed window, per second. */
  readonly opsPerSec: number;
  /** Wait per acquisition in milliseconds. */
  readonly waitP50Ms: number;
  readonly waitP99Ms: number;
  readonly waitMaxMs: number;
  /** Acquisitions per client within the window. */
  readonly perClient: readonly number[];
  readonly jain: number;
  /** 0–1: share of acquisitions won by the client that had just released. */
  readonly sameHolder: number;
  /** Times the contender gave up by its own rules and the harness asked again. */
  readonly giveUps: number;
  /** Critical sections run in all (window + drain) and the counter read back at the end. */
  readonly sections: number;
  readonly counter: number;
  /** Times a client found another one inside its critical section. */
  readonly overlaps: number;
  readonly correct: boolean;
}

/** How to run B2. */
export interface ContendedOptions {
  readonly clients: number;
  readonly durationMs: number;
  /** After the window, how long clients still waiting may take before the run is declared stuck. */
  readonly drainMs: number;
  readonly key: string;
  readonly counterKey: string;
  readonly counter: CounterFactory;
}

/** Run B2 for one contender. */
export async function runContended(
  contender: Contender,
  options: ContendedOptions,
): Promise<ContendedResult> {
  const locks: LockClient[] = [];
  const counters: CounterClient[] = [];
  try {
    for (let i = 0; i < options.clients; i++) {
      locks.push(await contender.createClient());
      counters.push(await options.counter(options.counterKey));
    }
    await counters[0]?.set(0);

    const holders: number[] = [];
    const waitsMs: number[] = [];
    const inWindow = new Array<number>(options.clients).fill(0);
    let giveUps = 0;
    let sections = 0;
    let inside = 0;
    let overlaps = 0;
    const started = performance.now();
    const deadline = started + options.durationMs;
    const stuckAt = deadline + options.drainMs;

    const loop = async (id: number): Promise<void> => {
      const lock = locks[id] as LockClient;
      const counter = counters[id] as CounterClient;
      while (performance.now() < deadline) {
        const asked = performance.now();
        let handle: unknown = null;
        while (handle === null) {
          handle = await lock.acquire(options.key);
          if (handle !== null) break;
          giveUps++;
          if (performance.now() > stuckAt) {
            throw new Error(`${contender.name}: client ${id} could not acquire within the drain`);
          }
        }
        const granted = performance.now();
        if (++inside > 1) overlaps++;
        waitsMs.push(granted - asked);
        holders.push(id);
        if (granted <= deadline) inWindow[id] = (inWindow[id] as number) + 1;
        await counter.set((await counter.get()) + 1);
        sections++;
        inside--;
        await lock.release(handle);
      }
    };
    await Promise.all(locks.map((_, id) => loop(id)));

    const counter = await (counters[0] as CounterClient).get();
    const waits = summarize(waitsMs);
    const granted = inWindow.reduce((a, b) => a + b, 0);
    return {
      name: contender.name,
      role: contender.role,
      tuned: contender.tuned,
      clients: options.clients,
      durationMs: options.durationMs,
      opsPerSec: granted / (options.durationMs / 1000),
      waitP50Ms: waits.p50,
      waitP99Ms: waits.p99,
      waitMaxMs: waits.max,
      perClient: inWindow,
      jain: jainIndex(inWindow),
      sameHolder: sameHolderShare(holders),
      giveUps,
      sections,
      counter,
      overlaps,
      correct: counter === sections && overlaps === 0,
    };
  } finally {
    await Promise.all([...locks, ...counters].map((client) => client.close()));
  }
}
