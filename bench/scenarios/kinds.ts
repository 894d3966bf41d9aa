/**
 * The lock-kind scenarios (B4–B6): clients loop on one key, each iteration taking it as a
 * reader, a writer or a semaphore permit (by a plan that is the same for every contender),
 * doing a short critical section against a counter in the store, and letting go.
 *
 * - B4, readers: 1 reader, then 8 readers; throughput, and how far it scales.
 * - B5, mixed: 8 clients, 90 % reads and 10 % writes; waits per kind, and whether any writer
 *   waited for readers that asked after it (see `lateReaders`).
 * - B6, semaphore: 8 clients on `limit` permits; throughput, waits and fairness, as B2.
 *
 * Every run checks the kinds' rules as it goes (no reader beside a writer, no two writers, never
 * more than `limit` permits) and that the writers' non-atomic increments of the counter add up.
 * Configurations run interleaved in rounds, as B2's contenders do.
 */
import { performance } from 'node:perf_hooks';
import type { Kind, KindsClient, KindsContender } from '../contenders/kinds.js';
import { jainIndex, sameHolderShare, summarize, type LatencySummary } from '../metrics.js';
import type { CounterClient, CounterFactory } from './counter.js';
import { ErrorTally } from './error-tally.js';
import { askUntilGranted, releaseCounted, runInRounds, type RoundsResult } from './rounds.js';

/** Which kind client `client` takes in its `iteration`-th acquisition. */
export type Plan = (client: number, iteration: number) => Kind;

/** One configuration: a contender, a number of clients and a plan. */
export interface KindsLaneSpec {
  readonly contender: KindsContender;
  readonly clients: number;
  readonly plan: Plan;
  /** Shown after the contender's name, e.g. `8 readers`. */
  readonly label: string;
}

/** One acquisition, on the harness's clock (ms). */
interface Op {
  readonly client: number;
  readonly kind: Kind;
  readonly askedAt: number;
  readonly grantedAt: number;
  releasedAt: number;
}

/** Writers that waited for readers that asked after them (reader preference at work). */
export interface LateReaders {
  /** The most such readers any one writer waited for (0: every writer waited only for those ahead). */
  readonly max: number;
  /** Writers that waited for at least one. */
  readonly writersPassed: number;
  readonly writers: number;
}

/** Figures of one configuration, over all its rounds. */
export interface KindsResult extends RoundsResult {
  /** The configuration, e.g. `8 readers`. */
  readonly label: string;
  /** Wait per acquisition (first attempt → grant) by kind, ms. */
  readonly waits: Partial<Record<Kind, LatencySummary>>;
  readonly perClient: readonly number[];
  readonly jain: number;
  readonly sameHolder: number;
  /** The most holders of each kind seen inside at once. */
  readonly mostInside: Record<Kind, number>;
  /** Mean time a read holding lasted (grant → release), ms: the length of a reader batch. */
  readonly readHoldMs: number;
  readonly lateReaders: LateReaders;
  /** The longest writer wait, in read holdings (`readHoldMs`): how many reader batches it took. */
  readonly maxWriterWaitInReadHolds: number;
  readonly giveUps: number;
  readonly errors: number;
  readonly firstError?: string;
  /** Broken rules seen: a reader beside a writer, two writers, more permits than the limit. */
  readonly violations: number;
  readonly writes: number;
  readonly counter: number;
  readonly correct: boolean;
}

export interface KindsOptions {
  /** Timed window per configuration, split into `rounds`. */
  readonly durationMs: number;
  readonly rounds: number;
  readonly warmupMs: number;
  readonly drainMs: number;
  /** Most semaphore permits at once (the permits' rule). */
  readonly limit: number;
  readonly key: string;
  readonly counterKey: string;
  readonly counter: CounterFactory;
  readonly onResult?: (result: KindsResult) => void;
}

/** A plan for `writeShare` writes among reads, the same for every contender (a fixed hash). */
export function mixedPlan(writeShare: number): Plan {
  return (client, iteration) => (unitHash(client, iteration) < writeShare ? 'write' : 'read');
}

/** A number in [0, 1) from two integers: a 32-bit integer hash (murmur3's finalizer). */
function unitHash(a: number, b: number): number {
  let h = Math.imul(a + 1, 0x9e3779b1) ^ Math.imul(b + 1, 0x85ebca77);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

class Lane {
  readonly clients: KindsClient[] = [];
  readonly counters: CounterClient[] = [];
  readonly ops: Op[] = [];
  readonly perClient: number[];
  readonly holders: number[][] = [];
  readonly iterations: number[];
  readonly errors: ErrorTally;
  readonly mostInside: Record<Kind, number> = { read: 0, write: 0, permit: 0 };
  timedMs = 0;
  rounds = 0;
  giveUps = 0;
  violations = 0;
  writes = 0;

  constructor(
    readonly spec: KindsLaneSpec,
    readonly key: string,
    readonly counterKey: string,
    readonly options: KindsOptions,
  ) {
    this.perClient = new Array<number>(spec.clients).fill(0);
    this.iterations = new Array<number>(spec.clients).fill(0);
    this.errors = new ErrorTally(`${spec.contender.name} ${spec.label}`);
  }

  async open(): Promise<void> {
    for (let i = 0; i < this.spec.clients; i++) {
      this.clients.push(await this.spec.contender.createClient());
      this.counters.push(await this.options.counter(this.counterKey));
    }
    await this.counters[0]?.set(0);
  }

  async window(durationMs: number, timed: boolean): Promise<void> {
    const options = this.options;
    const inside: Record<Kind, number> = { read: 0, write: 0, permit: 0 };
    const holders: number[] = [];
    if (timed) this.holders.push(holders);
    const deadline = performance.now() + durationMs;
    const stuckAt = deadline + options.drainMs;
    const loop = async (id: number): Promise<void> => {
      const client = this.clients[id]!;
      const counter = this.counters[id]!;
      while (performance.now() < deadline) {
        const kind = this.spec.plan(id, this.iterations[id]!++);
        const askedAt = performance.now();
        const handle = await askUntilGranted(
          () => client.acquire(kind, this.key),
          this,
          timed,
          stuckAt,
          `${this.errors.contender}: client ${id}`,
        );
        const grantedAt = performance.now();
        this.enter(inside, kind, options.limit);
        const op: Op = { client: id, kind, askedAt, grantedAt, releasedAt: grantedAt };
        if (timed) {
          this.ops.push(op);
          holders.push(id);
          if (grantedAt <= deadline) this.perClient[id]!++;
        }
        if (kind === 'write') {
          await counter.set((await counter.get()) + 1);
          this.writes++;
        } else {
          await counter.get();
        }
        op.releasedAt = performance.now();
        inside[kind]--;
        await releaseCounted(() => client.release(handle), this.errors);
      }
    };
    await Promise.all(this.clients.map((_, id) => loop(id)));
    if (!timed) return;
    this.timedMs += durationMs;
    this.rounds++;
  }

  /** Count a holder in, checking the kinds' rules. */
  enter(inside: Record<Kind, number>, kind: Kind, limit: number): void {
    const broken =
      kind === 'write'
        ? inside.read > 0 || inside.write > 0
        : kind === 'read'
          ? inside.write > 0
          : inside.permit >= limit;
    if (broken) this.violations++;
    inside[kind]++;
    this.mostInside[kind] = Math.max(this.mostInside[kind], inside[kind]);
  }

  async result(): Promise<KindsResult> {
    const { contender, label } = this.spec;
    const counter = await this.counters[0]!.get();
    const waits: Partial<Record<Kind, LatencySummary>> = {};
    for (const kind of ['read', 'write', 'permit'] as const) {
      const samples = this.ops
        .filter((op) => op.kind === kind)
        .map((op) => op.grantedAt - op.askedAt);
      if (samples.length > 0) waits[kind] = summarize(samples);
    }
    const reads = this.ops.filter((op) => op.kind === 'read');
    const readHoldMs =
      reads.length === 0
        ? Number.NaN
        : reads.reduce((sum, op) => sum + (op.releasedAt - op.grantedAt), 0) / reads.length;
    const writeWait = waits.write?.max ?? Number.NaN;
    return {
      name: contender.name,
      label,
      role: contender.role,
      tuned: contender.tuned,
      clients: this.spec.clients,
      durationMs: this.timedMs,
      rounds: this.rounds,
      opsPerSec: this.perClient.reduce((a, b) => a + b, 0) / (this.timedMs / 1000),
      waits,
      perClient: [...this.perClient],
      jain: jainIndex(this.perClient),
      sameHolder: sameHolderShare(...this.holders),
      mostInside: { ...this.mostInside },
      readHoldMs,
      lateReaders: lateReaders(this.ops),
      maxWriterWaitInReadHolds: writeWait / readHoldMs,
      giveUps: this.giveUps,
      errors: this.errors.count,
      ...(this.errors.first ? { firstError: this.errors.first } : {}),
      violations: this.violations,
      writes: this.writes,
      counter,
      correct: this.violations === 0 && counter === this.writes,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients, ...this.counters].map((client) => client.close()));
  }
}

/**
 * How much later than a writer a reader must have asked to count as "after" it. Clients ask on
 * separate connections: two requests asked within about a round trip of each other reach Redis
 * in either order (they were concurrent), so only a reader that asked later than that is one the
 * writer could have kept out.
 */
export const LATE_MARGIN_MS = 1;

/**
 * For each writer, the readers that asked after it (by more than {@link LATE_MARGIN_MS}) and got
 * in before it. Under writer preference (a waiting writer keeps later readers out) there are none:
 * a writer waits only for the holders and waiters ahead of it, at most the reader batch in
 * progress plus whatever queued before it.
 */
export function lateReaders(
  ops: readonly Pick<Op, 'kind' | 'askedAt' | 'grantedAt'>[],
): LateReaders {
  const reads = ops.filter((op) => op.kind === 'read').sort((a, b) => a.askedAt - b.askedAt);
  const writes = ops.filter((op) => op.kind === 'write');
  let max = 0;
  let writersPassed = 0;
  for (const write of writes) {
    let late = 0;
    // Reads that asked after the writer: the first one by binary search, then scan.
    let lo = 0;
    let hi = reads.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (reads[mid]!.askedAt <= write.askedAt + LATE_MARGIN_MS) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < reads.length && reads[i]!.askedAt < write.grantedAt; i++) {
      if (reads[i]!.grantedAt < write.grantedAt) late++;
    }
    if (late > 0) writersPassed++;
    max = Math.max(max, late);
  }
  return { max, writersPassed, writers: writes.length };
}

/** Run the configurations interleaved in rounds; results in their order. */
export async function runKinds(
  specs: readonly KindsLaneSpec[],
  options: KindsOptions,
): Promise<KindsResult[]> {
  const lanes = specs.map(
    (spec, index) =>
      new Lane(spec, `${options.key}${index}`, `${options.counterKey}${index}`, options),
  );
  return runInRounds(lanes, options);
}
