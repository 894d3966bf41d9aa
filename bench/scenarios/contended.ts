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
import type { Contender, LockClient } from '../contenders/contender.js';
import { jainIndex, sameHolderShare, summarize } from '../metrics.js';
import type { CounterClient, CounterFactory } from './counter.js';
import { ErrorTally } from './error-tally.js';
import { askUntilGranted, releaseCounted, runInRounds, type RoundsResult } from './rounds.js';

/** B2 figures of one contender, over all its rounds. */
export interface ContendedResult extends RoundsResult {
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
    readonly options: ContendedOptions,
  ) {
    this.perClient = new Array<number>(options.clients).fill(0);
    this.errors = new ErrorTally(contender.name);
  }

  async open(): Promise<void> {
    for (let i = 0; i < this.options.clients; i++) {
      this.locks.push(await this.contender.createClient());
      this.counters.push(await this.options.counter(this.counterKey));
    }
    await this.counters[0]?.set(0);
  }

  /**
   * One window: every client loops until the deadline, then finishes what it started. An untimed
   * window (a warm-up) only counts its critical sections and overlaps, for the counter check.
   */
  async window(durationMs: number, timed: boolean): Promise<void> {
    let inside = 0;
    const holders: number[] = [];
    if (timed) this.holders.push(holders);
    const started = performance.now();
    const deadline = started + durationMs;
    const stuckAt = deadline + this.options.drainMs;
    const loop = async (id: number): Promise<void> => {
      const lock = this.locks[id] as LockClient;
      const counter = this.counters[id] as CounterClient;
      const who = `${this.contender.name}: client ${id}`;
      while (performance.now() < deadline) {
        const asked = performance.now();
        const handle = await askUntilGranted(
          () => lock.acquire(this.key),
          this,
          timed,
          stuckAt,
          who,
        );
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
        await releaseCounted(() => lock.release(handle), this.errors);
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
  const lanes = contenders.map(
    (contender, index) =>
      new Lane(contender, `${options.key}${index}`, `${options.counterKey}${index}`, options),
  );
  return runInRounds(lanes, {
    rounds: options.rounds ?? 1,
    durationMs: options.durationMs,
    warmupMs: options.warmupMs ?? 0,
    onResult: options.onResult,
  });
}

/** Run B2 for one contender. */
export async function runContended(
  contender: Contender,
  options: ContendedOptions,
): Promise<ContendedResult> {
  const [result] = await runContendedInterleaved([contender], options);
  return result as ContendedResult;
}

/**
 * B2 as both stores run it: `clients` clients per contender for the run's contended duration, in
 * its rounds after its warm-up, progress logged per contender.
 */
export function runB2(
  store: string,
  contenders: readonly Contender[],
  options: {
    readonly clients: number;
    readonly contendedMs: number;
    readonly contendedRounds: number;
    readonly contendedWarmupMs: number;
  },
  keys: { readonly key: string; readonly counterKey: string; readonly counter: CounterFactory },
  log: (line: string) => void,
): Promise<ContendedResult[]> {
  log(
    `${store} B2: ${contenders.length} contenders × ${options.contendedMs / 1000} s ` +
      `in ${options.contendedRounds} interleaved round(s), after ${options.contendedWarmupMs / 1000} s of warm-up each`,
  );
  return runContendedInterleaved(contenders, {
    clients: options.clients,
    durationMs: options.contendedMs,
    rounds: options.contendedRounds,
    warmupMs: options.contendedWarmupMs,
    drainMs: 15_000,
    ...keys,
    onResult: (result) =>
      log(
        `${store} B2: ${result.name.padEnd(28)} ${Math.round(result.opsPerSec)} ops/s, ` +
          `p99 wait ${result.waitP99Ms.toFixed(1)} ms${result.correct ? '' : '  *** COUNTER CHECK FAILED ***'}`,
      ),
  });
}
