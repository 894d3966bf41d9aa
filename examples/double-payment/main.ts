/**
 * The double-payment demo: several worker processes receive payments for the same accounts at the
 * same time and each allocates its payment to the account's oldest unpaid orders (read the account
 * → ask the payment provider → write it back). Run once without a lock, the read-modify-writes
 * race: payments vanish, orders are collected twice, money is lost. Run again with
 * `locks.withLock('account:<id>')` around the same code, every invariant holds. A third run freezes
 * one worker while it holds the lock, past its lease: the store's fence check refuses its stale
 * write.
 *
 * ```sh
 * npm run demo                       # files backend in a temporary directory
 * npm run demo -- --workers 8 --payments 600 --backend redis://127.0.0.1:6379
 * ```
 *
 * Exits with 1 if any invariant breaks while the lock is used.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '../../src/index.js';
import { openBackend, redactUrl } from '../../src/backend-url.js';
import { formatInvariantRules, formatSummary, startProgress } from './report.js';
import { isPostgresUrl } from './ledger.js';
import { runOnce, type RunResult, type RunSpec } from './run.js';
import { WorkerPool } from './worker-pool.js';
import { generateScenario } from './scenario.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Worker processes per run. @default 4 */
  readonly workers?: number;
  /** Payments per run. @default 240 */
  readonly payments?: number;
  /** Accounts the payments are spread over (one lock each). @default 3 */
  readonly accounts?: number;
  /** Seed of the generated orders and payments. @default 42 */
  readonly seed?: number;
  /**
   * Lock backend URL (`file:///dir`, `redis://host:port`, `etcd://host:port`, …); it must be
   * shared by processes. @default the files backend in a fresh temporary directory
   */
  readonly backendUrl?: string;
  /** Lease TTL of the locked run. @default 5_000 */
  readonly ttlMs?: number;
  /** Add the run in which a worker freezes past its lease (needs 2+ workers). @default true */
  readonly frozenWorkerRun?: boolean;
  /**
   * Test hook: the "with lock" runs secretly skip the lock, to prove that a broken invariant makes
   * the demo fail. @default false
   */
  readonly skipLockInLockedRuns?: boolean;
  /** `pretty`: progress and table; `json`: the {@link DemoResult} as JSON; `silent`. @default 'pretty' */
  readonly output?: 'pretty' | 'json' | 'silent';
  /** Where output goes. @default process.stdout */
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The outcome of {@link runDemo}. */
export interface DemoResult {
  /** True when no invariant broke in any run that used the lock. */
  readonly ok: boolean;
  /** What the process should exit with: 0 when `ok`, else 1. */
  readonly exitCode: 0 | 1;
  /** The backend URL, password redacted. */
  readonly backendUrl: string;
  readonly workers: number;
  readonly payments: number;
  readonly accounts: number;
  readonly seed: number;
  /** Without lock, with lock, and (optionally) with lock and a frozen worker. */
  readonly runs: readonly RunResult[];
}

/** Every default of {@link DemoOptions}. */
export const DEMO_DEFAULTS = Object.freeze({
  workers: 4,
  payments: 240,
  accounts: 3,
  seed: 42,
  ttlMs: 5_000,
  frozenWorkerRun: true,
  skipLockInLockedRuns: false,
  output: 'pretty',
  /** The frozen worker's lease: short, so that it runs out quickly. */
  frozenLeaseTtlMs: 1_000,
  waitMs: 60_000,
  providerDelayMs: Object.freeze({ min: 2, max: 10 }),
  startTimeoutMs: 60_000,
  runTimeoutMs: 120_000,
} as const);

function integerIn(option: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      option,
      `must be an integer from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

/**
 * Run the demo: without the lock, with it, and with it while a worker freezes past its lease.
 *
 * @throws {InvalidArgumentError} for a bad option or a backend that is not shared by processes.
 * @example
 * ```ts
 * const result = await runDemo({ workers: 4, payments: 300 });
 * if (!result.ok) process.exitCode = 1;
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const workers = integerIn('workers', options.workers ?? DEMO_DEFAULTS.workers, 1, 64);
  const payments = integerIn('payments', options.payments ?? DEMO_DEFAULTS.payments, 1, 100_000);
  const accounts = integerIn('accounts', options.accounts ?? DEMO_DEFAULTS.accounts, 1, 1_000);
  const ttlMs = integerIn('ttlMs', options.ttlMs ?? DEMO_DEFAULTS.ttlMs, 100, 3_600_000);
  const seed = options.seed ?? DEMO_DEFAULTS.seed;
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError('seed', 'must be an integer');
  const output = options.output ?? DEMO_DEFAULTS.output;
  if (!['pretty', 'json', 'silent'].includes(output)) {
    throw new InvalidArgumentError('output', `must be 'pretty', 'json' or 'silent', got ${output}`);
  }
  const stream = options.stream ?? process.stdout;
  const frozenWorkerRun = (options.frozenWorkerRun ?? DEMO_DEFAULTS.frozenWorkerRun) && workers > 1;
  const skipLock = options.skipLockInLockedRuns ?? DEMO_DEFAULTS.skipLockInLockedRuns;

  const workRoot = await mkdtemp(join(tmpdir(), 'distlock-demo-'));
  const backendUrl = options.backendUrl ?? pathToFileURL(join(workRoot, 'locks')).href;
  let pool: WorkerPool | undefined;
  try {
    await checkSharedBackend(backendUrl);
    const scenario = generateScenario({ accounts, payments, seed });
    const demoId = `${process.pid}-${Date.now().toString(36)}`;
    const worker = (id: string, locking: boolean, ttlMs: number): RunSpec['worker'] => ({
      locking,
      // Runs may share one backend (a Redis server, say): each gets its own keys.
      keyPrefix: `distlock-demo:${demoId}:${id}:`,
      ttlMs,
      waitMs: DEMO_DEFAULTS.waitMs,
      providerDelayMs: DEMO_DEFAULTS.providerDelayMs,
    });
    // On PostgreSQL the accounts live beside the locks, fenced in SQL (one table per run).
    const ledgerOf = (id: string) =>
      isPostgresUrl(backendUrl)
        ? { postgresLedger: { url: backendUrl, table: `distlock_demo_${demoId}_${id}` } }
        : {};
    const specs: Omit<RunSpec, 'workDir' | 'timeoutMs'>[] = [
      {
        id: 'without-lock',
        label: 'without lock',
        expectSafe: false,
        scenario,
        worker: worker('without-lock', false, ttlMs),
        ...ledgerOf('without_lock'),
      },
      {
        id: 'with-lock',
        label: 'with lock',
        expectSafe: true,
        scenario,
        worker: worker('with-lock', !skipLock, ttlMs),
        ...ledgerOf('with_lock'),
      },
    ];
    if (frozenWorkerRun) {
      specs.push({
        id: 'with-lock-frozen-worker',
        label: 'lock + frozen worker',
        expectSafe: true,
        scenario,
        worker: worker('with-lock-frozen-worker', !skipLock, ttlMs),
        freezeLeaseTtlMs: DEMO_DEFAULTS.frozenLeaseTtlMs,
        ...ledgerOf('frozen_worker'),
      });
    }

    const say = (text: string) => output === 'pretty' && stream.write(text);
    say(
      `Double payment: ${payments} payments to ${accounts} accounts, ${workers} worker processes, ` +
        `lock backend ${redactUrl(backendUrl)}\n`,
    );
    say(`\n${formatInvariantRules()}\n\nStarting ${workers} worker processes…\n`);
    pool = await WorkerPool.start(workers, backendUrl, DEMO_DEFAULTS.startTimeoutMs);

    const runs: RunResult[] = [];
    for (const spec of specs) {
      const progress =
        output === 'pretty' ? startProgress(stream, spec.label, payments) : undefined;
      try {
        runs.push(
          await runOnce(pool, {
            ...spec,
            workDir: join(workRoot, spec.id),
            timeoutMs: DEMO_DEFAULTS.runTimeoutMs,
            onProgress: (processed) => progress?.update(processed),
          }),
        );
      } finally {
        progress?.stop();
      }
    }

    const ok = runs.every((run) => !run.expectSafe || run.brokenInvariants === 0);
    const result: DemoResult = {
      ok,
      exitCode: ok ? 0 : 1,
      backendUrl: redactUrl(backendUrl),
      workers,
      payments,
      accounts,
      seed,
      runs,
    };
    say(`\n${formatSummary(result)}\n`);
    if (output === 'json') stream.write(`${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await pool?.close();
    await rm(workRoot, { recursive: true, force: true });
  }
}

/** The workers are separate processes: an in-process backend (`memory:`) cannot protect them. */
async function checkSharedBackend(url: string): Promise<void> {
  const backend = await openBackend(url);
  try {
    if (!backend.capabilities.crossProcess) {
      throw new InvalidArgumentError(
        'backendUrl',
        `${backend.name} locks live inside one process, but the demo's workers are separate ` +
          'processes; use file:///dir, redis://host:port or etcd://host:port',
      );
    }
  } finally {
    await backend.close();
  }
}

const USAGE = `Usage: npm run demo -- [options]

  --workers N      worker processes per run (default ${DEMO_DEFAULTS.workers})
  --payments N     payments per run (default ${DEMO_DEFAULTS.payments})
  --accounts N     accounts, one lock each (default ${DEMO_DEFAULTS.accounts})
  --seed N         seed of the generated orders and payments (default ${DEMO_DEFAULTS.seed})
  --backend URL    file:///dir, redis://host:port, etcd://host:port, postgres://host/db
                   (default: files in a temp dir; on PostgreSQL the accounts live there too)
  --ttl-ms N       lease TTL of the locked run (default ${DEMO_DEFAULTS.ttlMs})
  --no-frozen-worker   skip the run in which a worker freezes past its lease
  --json           print the result as JSON instead of the table
  --skip-lock-in-locked-runs   test hook: prove that a broken invariant fails the demo
`;

function integerArg(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text)) throw new InvalidArgumentError(option, `"${text}" is not an integer`);
  return Number(text);
}

/** Parse command-line arguments into {@link DemoOptions}. */
export function parseDemoArgs(args: readonly string[]): DemoOptions | 'help' {
  const { values } = parseArgs({
    args: [...args],
    options: {
      workers: { type: 'string' },
      payments: { type: 'string' },
      accounts: { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      'ttl-ms': { type: 'string' },
      'no-frozen-worker': { type: 'boolean' },
      json: { type: 'boolean' },
      'skip-lock-in-locked-runs': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const options: { -readonly [K in keyof DemoOptions]: DemoOptions[K] } = {
    output: values.json ? 'json' : 'pretty',
    frozenWorkerRun: !values['no-frozen-worker'],
    skipLockInLockedRuns: values['skip-lock-in-locked-runs'] ?? false,
  };
  options.workers = integerArg('--workers', values.workers);
  options.payments = integerArg('--payments', values.payments);
  options.accounts = integerArg('--accounts', values.accounts);
  options.seed = integerArg('--seed', values.seed);
  options.ttlMs = integerArg('--ttl-ms', values['ttl-ms']);
  if (values.backend !== undefined) options.backendUrl = values.backend;
  return options;
}

async function cli(): Promise<void> {
  let options: DemoOptions | 'help';
  try {
    options = parseDemoArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  try {
    const result = await runDemo(options);
    process.exitCode = result.exitCode;
  } catch (error) {
    process.stderr.write(`demo failed: ${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}

if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href
) {
  await cli();
}
