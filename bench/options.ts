/** Command-line options of `npm run bench` (the bench compiled by `tsc -p tsconfig.bench.json`). */
import { parseArgs } from 'node:util';

/** What to run and for how long. */
export interface BenchOptions {
  /** Which stores to benchmark. */
  readonly stores: readonly ('redis' | 'etcd' | 'postgres')[];
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

  --only redis|etcd|postgres   run one store's benchmarks (default: all)
  --duration 5s       B2 (contended) time per contender (default 5s; ms, s or m),
                      run as 2 interleaved rounds, after a 0.5 s untimed warm-up
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
      duration: { type: 'string' },
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
  if (only !== undefined && only !== 'redis' && only !== 'etcd' && only !== 'postgres') {
    throw new Error(`--only: expected redis, etcd or postgres, got "${only}"`);
  }
  const quick = values.quick ?? false;
  const contendedMs =
    values.duration !== undefined ? parseDuration(values.duration) : quick ? 1_000 : 5_000;
  return {
    stores: only ? [only] : ['redis', 'etcd', 'postgres'],
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
