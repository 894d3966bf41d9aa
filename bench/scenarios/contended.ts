/**
 * B2, contended: `clients` clients (each with its own connections) loop on one key: acquire →
 * read-modify-write a counter in the store → release. Measures throughput, the wait for each
 * acquisition (from the first attempt to the grant, give-ups included), fairness (per-client
 * counts, Jain's index, same-holder share) and correctness (the counter equals the number of
 * critical sections, and no two clients were ever inside at once).
 *
 * Several contenders run interleaved: each one's total time is split into `rounds` windows, taken
 * in turn with a rotating start, so that drift of a shared, noisy machine hits all of them alike.
 */
import { performance } from 'node:perf_hooks';
import type { Contender, ContenderRole, LockClient } from '../contenders/contender.js';
import { jainIndex, sameHolderShare, summarize } from '../metrics.js';
import type { CounterClient, CounterFactory } from './counter.js';
import { ErrorTally } from './error-tally.js';

/** B2 figures of one contender, over all its rounds. */
export interface ContendedResult {
  readonly name: string;
  readonly role: ContenderRole;
  readonly tuned: boolean;
  readonly clients: number;
  /** Timed window in all (the sum of the rounds). */
  readonly durationMs: number;
  readonly rounds: number;
  /** Critical sections granted within the timed windows, per second. */
  readonly opsPerSec: number;
  /** Wait per acquisition in milliseconds. */
  readonly waitP50Ms: number;
  readonly waitP99Ms: number;
  readonly waitMaxMs: number;
  /** Acquisitions per client within the windows. */
  readonly perClient: readonly number[];
  readonly jain: number;
  /** 0–1: share of acquisitions won by the client that had just released. */
  readonly sameHolder: number;
  /** Times the contender gave up by its own rules and the harness asked again. */
  readonly giveUps: number;
  /** Calls that failed (counted, not fatal; a failed acquire is asked again) and the first one. */
  readonly errors: number;
  readonly firstError?: string;
  /** Critical sections run in all (windows + drains) and the counter read back at the end. */
  readonly sections: number;
  readonly counter: number;
  /** Times a client found another one inside its critical section. */
  readonly overlaps: number;
  readonly correct: boolean;
}

/** How to run B2. */
export interface ContendedOptions {
  readonly clients: number;
  /** Total timed window per contender, split into `rounds`. */
  readonly durationMs: number;
  /** @default 1 */
  readonly rounds?: number;
  /**
   * An untimed window per contender before its first timed one (connections, JIT, the server's
   * first queue), as B1 warms up before it times. Its critical sections still count for the
   * counter check. @default 0
   */
  readonly warmupMs?: number;
  /** After a window, how long clients still waiting may take before the run is declared stuck. */
  readonly drainMs: number;
  /** Lock key and counter key; each contender gets its own (suffixed with its index). */
  readonly key: string;
  readonly counterKey: string;
  readonly counter: CounterFactory;
  readonly onResult?: (result: ContendedResult) => void;
}

/** One contender's clients and what they measured so far. */
class Lane {
  readonly locks: LockClient[] = [];
  readonly counters: CounterClient[] = [];
  readonly waitsMs: number[] = [];
  readonly perClient: number[];
  timedMs = 0;
  rounds = 0;
  giveUps = 0;
  readonly errors: ErrorTally;
  sections = 0;
  overlaps = 0;
  /** Holders in grant order, one sequence per window. */
  readonly holders: number[][] = [];

  constructor(
    readonly contender: Contender,
    readonly key: string,
    readonly counterKey: string,
    clients: number,
  ) {
    this.perClient = new Array<number>(clients).fill(0);
    this.errors = new ErrorTally(contender.name);
  }

  async open(options: ContendedOptions): Promise<void> {
    for (let i = 0; i < options.clients; i++) {
      this.locks.push(await this.contender.createClient());
      this.counters.push(await options.counter(this.counterKey));
    }
    await this.counters[0]?.set(0);
  }

  /**
   * One window: every client loops until the deadline, then finishes what it started. An untimed
   * window (a warm-up) only counts its critical sections and overlaps, for the counter check.
   */
  async window(durationMs: number, drainMs: number, timed = true): Promise<void> {
    let inside = 0;
    const holders: number[] = [];
    if (timed) this.holders.push(holders);
    const started = performance.now();
    const deadline = started + durationMs;
    const stuckAt = deadline + drainMs;
    const loop = async (id: number): Promise<void> => {
      const lock = this.locks[id] as LockClient;
      const counter = this.counters[id] as CounterClient;
      while (performance.now() < deadline) {
        const asked = performance.now();
        let handle: unknown = null;
        while (handle === null) {
          try {
            handle = await lock.acquire(this.key);
            if (handle === null && timed) this.giveUps++;
          } catch (error) {
            this.errors.record(error);
          }
          if (handle !== null) break;
          if (performance.now() > stuckAt) {
            throw new Error(
              `${this.contender.name}: client ${id} could not acquire within the drain`,
            );
          }
        }
        const granted = performance.now();
        if (++inside > 1) this.overlaps++;
        if (timed) {
          this.waitsMs.push(granted - asked);
          holders.push(id);
          if (granted <= deadline) this.perClient[id] = (this.perClient[id] as number) + 1;
        }
        await counter.set((await counter.get()) + 1);
        this.sections++;
        inside--;
        try {
          await lock.release(handle);
        } catch (error) {
          this.errors.record(error);
        }
      }
    };
    await Promise.all(this.locks.map((_, id) => loop(id)));
    if (!timed) return;
    this.timedMs += durationMs;
    this.rounds++;
  }

  async result(): Promise<ContendedResult> {
    const counter = await (this.counters[0] as CounterClient).get();
    const waits = summarize(this.waitsMs);
    const granted = this.perClient.reduce((a, b) => a + b, 0);
    return {
      name: this.contender.name,
      role: this.contender.role,
      tuned: this.contender.tuned,
      clients: this.perClient.length,
      durationMs: this.timedMs,
      rounds: this.rounds,
      opsPerSec: granted / (this.timedMs / 1000),
      waitP50Ms: waits.p50,
      waitP99Ms: waits.p99,
      waitMaxMs: waits.max,
      perClient: [...this.perClient],
      jain: jainIndex(this.perClient),
      sameHolder: sameHolderShare(...this.holders),
      giveUps: this.giveUps,
      errors: this.errors.count,
      ...(this.errors.first ? { firstError: this.errors.first } : {}),
      sections: this.sections,
      counter,
      overlaps: this.overlaps,
      correct: counter === this.sections && this.overlaps === 0,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.locks, ...this.counters].map((client) => client.close()));
  }
}

/** Run B2 for `contenders`, interleaved in rounds; results in the contenders' order. */
export async function runContendedInterleaved(
  contenders: readonly Contender[],
  options: ContendedOptions,
): Promise<ContendedResult[]> {
  const rounds = options.rounds ?? 1;
  const lanes = contenders.map(
    (contender, index) =>
      new Lane(
        contender,
        `${options.key}${index}`,
        `${options.counterKey}${index}`,
        options.clients,
      ),
  );
  try {
    for (const lane of lanes) await lane.open(options);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < lanes.length; i++) {
        const lane = lanes[(round + i) % lanes.length] as Lane;
        if (lane.rounds === 0 && (options.warmupMs ?? 0) > 0) {
          await lane.window(options.warmupMs ?? 0, options.drainMs, false);
        }
        await lane.window(options.durationMs / rounds, options.drainMs);
        if (lane.rounds === rounds) options.onResult?.(await lane.result());
      }
    }
    return await Promise.all(lanes.map((lane) => lane.result()));
  } finally {
    await Promise.all(lanes.map((lane) => lane.close()));
  }
}

/** Run B2 for one contender. */
export async function runContended(
  contender: Contender,
  options: ContendedOptions,
): Promise<ContendedResult> {
  const [result] = await runContendedInterleaved([contender], options);
  return result as ContendedResult;
}
