/** Command-line options of `npm run bench` (the bench compiled by `tsc -p tsconfig.bench.json`). */
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** The scenarios: B1–B3 on the mutex (Redis and etcd), B4–B6 on the lock kinds (Redis). */
export const SCENARIOS = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** What to run and for how long. */
export interface BenchOptions {
  /** Which stores to benchmark. */
  readonly stores: readonly ('redis' | 'etcd' | 'postgres' | 'azure-blob' | 'redlock')[];
  /** Which scenarios to run (where the store has them). */
  readonly scenarios: ReadonlySet<Scenario>;
  /** B4–B6: timed window per contender and configuration (in all, split into rounds). */
  readonly kindsMs: number;
  /**
   * Root of another distlock checkout whose `dist/` is built: its Redis backend runs as one more
   * row of B1–B3 (`distlock (<label>)`), to compare two versions in one run.
   */
  readonly baseline?: { readonly dir: string; readonly label: string };
  /** B2 window per contender (in all). */
  readonly contendedMs: number;
  /** B2: the window is split into this many rounds, interleaved across contenders. */
  readonly contendedRounds: number;
  /** B2: an untimed warm-up window per contender before its first round. */
  readonly contendedWarmupMs: number;
  /** B1 time budget per store (all contenders together, interleaved). */
  readonly uncontendedMs: number;
  /** B3: rounds × round length per contender. */
  readonly manyKeysRounds: number;
  readonly manyKeysRoundMs: number;
  readonly quick: boolean;
  /** Write all results as JSON here. */
  readonly jsonPath?: string;
  /** Write the tables as markdown here (for BENCHMARKS.md). */
  readonly markdownPath?: string;
}

/** Usage text for `--help`. */
export const USAGE = `Usage: npm run bench -- [options]

  --only redis|etcd|postgres|azure-blob|redlock   run one store's benchmarks (default: all;
                      redlock: five redis-servers, B1 and B2)
  --scenarios b1,b4   run only these scenarios (default: all; b4–b6 are Redis's
                      read-write lock and semaphore benchmarks)
  --duration 5s       B2 (contended) time per contender (default 5s; ms, s or m),
                      run as 2 interleaved rounds, after a 0.5 s untimed warm-up;
                      B4–B6 use it per contender and configuration too
  --baseline DIR      also run the distlock build in DIR (its dist/, built with
                      npm run build) as a row of Redis B1–B3, to compare versions
  --baseline-label L  that row's label (default: the directory's name)
  --quick             a smoke test: about 20 s in all, figures not meaningful
  --json FILE         also write every figure as JSON
  --markdown FILE     also write the tables as markdown
  --help              this text`;

/** Parse `5s`, `500ms`, `1m`, or a bare number of milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`--duration: expected e.g. 5s or 500ms, got "${text}"`);
  const value = Number(match[1]);
  const unit = match[2] ?? 'ms';
  const ms = unit === 'm' ? value * 60_000 : unit === 's' ? value * 1000 : value;
  if (ms < 100 || ms > 600_000)
    throw new Error(`--duration: must be between 100ms and 10m, got "${text}"`);
  return Math.round(ms);
}

/** Read the options from `argv` (without node and the script). Throws with a message on bad input. */
export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string' },
      scenarios: { type: 'string' },
      duration: { type: 'string' },
      baseline: { type: 'string' },
      'baseline-label': { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const only = values.only;
  if (
    only !== undefined &&
    only !== 'redis' &&
    only !== 'etcd' &&
    only !== 'postgres' &&
    only !== 'azure-blob' &&
    only !== 'redlock'
  ) {
    throw new Error(`--only: expected redis, etcd, postgres, azure-blob or redlock, got "${only}"`);
  }
  const quick = values.quick ?? false;
  const contendedMs =
    values.duration !== undefined ? parseDuration(values.duration) : quick ? 1_000 : 5_000;
  const scenarios = new Set<Scenario>();
  for (const name of (values.scenarios ?? SCENARIOS.join(',')).split(',')) {
    const scenario = name.trim().toLowerCase();
    if (!(SCENARIOS as readonly string[]).includes(scenario)) {
      throw new Error(`--scenarios: expected some of ${SCENARIOS.join(',')}, got "${name}"`);
    }
    scenarios.add(scenario as Scenario);
  }
  const baselineDir = values.baseline;
  const baseline =
    baselineDir === undefined
      ? undefined
      : { dir: baselineDir, label: values['baseline-label'] ?? basename(resolve(baselineDir)) };
  return {
    stores: only ? [only] : ['redis', 'etcd', 'postgres', 'azure-blob', 'redlock'],
    scenarios,
    kindsMs: contendedMs,
    ...(baseline ? { baseline } : {}),
    contendedMs,
    contendedRounds: quick ? 1 : 2,
    contendedWarmupMs: quick ? 0 : 500,
    uncontendedMs: quick ? 1_000 : 12_000,
    manyKeysRounds: quick ? 1 : 3,
    manyKeysRoundMs: quick ? 300 : 1_000,
    quick,
    ...(values.json !== undefined ? { jsonPath: values.json } : {}),
    ...(values.markdown !== undefined ? { markdownPath: values.markdown } : {}),
  };
}
