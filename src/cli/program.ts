/**
 * The `distlock` command line: argument parsing (commander), help text, and mapping every outcome
 * to an exit code. Each command's work lives in its own module.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { defaultLockDir, parseDuration } from '../backend-url.js';
import { describeError, exitCodeFor, UsageError } from './cli-error.js';
import { demoCommand } from './demo-command.js';
import { EXIT_CODES_HELP, ExitCode } from './exit-codes.js';
import { listCommand, releaseCommand, statusCommand } from './inspect-commands.js';
import { BACKEND_URL_ENV, openedBackendLabel } from './open-locks.js';
import { printError } from './output.js';
import { runUnderLock } from './run-command.js';

/** Shortest TTL `run` accepts: below this, renewal round trips eat the whole lease. */
const MIN_TTL_MS = 100;

const BACKENDS_HELP = `Backends (--backend URL, else $${BACKEND_URL_ENV}, else lock files under the temp dir):
  file:///var/lock/myapp            lock files in a directory: processes on one host
                                    (default: file://${defaultLockDir()})
  memory:                           inside one process only (for trying things out)
  redis://[user:password@]host:6379[/db]   Redis; rediss:// for TLS
  etcd://host1:2379,host2:2379      an etcd cluster's client endpoints
  postgres://[user:password@]host:5432/db   PostgreSQL (a lease table); postgresql:// too
  redlock://, azblob:// and Azure connection strings: not available yet
  Passwords in URLs are never printed.

Durations: 500ms, 30s, 5m, 1h, or a number of milliseconds.`;

const RUN_HELP = `
The command runs with these variables in its environment:
  DISTLOCK_KEY       the key
  DISTLOCK_TOKEN     this holder's token
  DISTLOCK_FENCE     the fencing token (a decimal integer, greater for every new holder of the key);
                     pass it to the resource you protect so it can refuse older holders
  DISTLOCK_DEADLINE  the lease's local deadline when the command started, in epoch milliseconds;
                     distlock renews the lease every ttl/3, moving the real deadline later

If the lock is lost (broken with 'release --force', or not renewed in time because the backend is
unreachable), the command gets SIGTERM and, --grace later at most, SIGKILL. When renewal is late,
SIGTERM comes once the lease is within --grace (plus a margin of min(200ms, ttl/20)) of its local
deadline, and SIGKILL that margin before the deadline. The local deadline is earlier than the
store's expiry (it counts from when the request was sent, less a clock-drift margin of 1% of the
TTL + 2ms), so the command is dead before anyone else can take the lock. distlock then exits 76.
--grace is at most a quarter of --ttl. If distlock itself is killed with SIGKILL, nobody is left
to stop the command: the lock expires after --ttl while the command may still run.

SIGINT, SIGTERM and SIGHUP sent to distlock are passed on to the command; the lock is released
once it exits. The command runs in its own process group so that signals reach its children too;
--foreground keeps it in distlock's group, attached to the terminal (for interactive commands; then
only the command itself is signalled, and Ctrl-C reaches it both from the terminal and from distlock).

Examples:
  distlock run nightly-report -- ./report.sh --date today
  distlock run --no-wait migrate -- npm run migrate        # exit 75 at once if someone else migrates
  DISTLOCK_URL=redis://cache:6379 distlock run --ttl 1m --wait 5m deploy -- ./deploy.sh

${EXIT_CODES_HELP}`;

function packageVersion(): string {
  try {
    const url = new URL('../../package.json', import.meta.url);
    const { version } = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A duration option: parsed eagerly so a bad value names its option. */
function duration(option: string, value: string): number {
  return parseDuration(value, option);
}

function integer(option: string, value: string | boolean | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  if (!/^\d+$/.test(value.trim()))
    throw new UsageError(`${option}: "${value}" is not a whole number`);
  return Number(value);
}

function waitOption(value: string | boolean | undefined): number {
  if (value === false) return 0;
  if (value === undefined || value === true) return 10_000;
  if (/^\s*(forever|infinity|inf)\s*$/i.test(value)) return Infinity;
  return duration('--wait', value);
}

/** Give each command the same one-line error output. */
function configure(command: Command, hint: string): Command {
  return command
    .exitOverride()
    .configureOutput({
      outputError: (message) =>
        printError(`${message.trim().replace(/^error:\s*/i, '')} (see '${hint} --help')`),
    })
    .showSuggestionAfterError(true);
}

/**
 * Build the `distlock` program. Each action stores its exit code in `result.exitCode`.
 */
export function buildProgram(result: { exitCode: number }): Command {
  const program = configure(new Command('distlock'), 'distlock')
    .description(
      'Run a command while holding a distributed lock, and inspect or break locks, on files, ' +
        'Redis or etcd.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .addHelpText('after', `\n${BACKENDS_HELP}\n\n${EXIT_CODES_HELP}`);

  const backendOption = () =>
    new Option('-b, --backend <url>', `where the locks live (default: $${BACKEND_URL_ENV})`);

  configure(program.command('run'), 'distlock run')
    .summary('run a command while holding the lock on KEY')
    .description(
      'Take the lock on KEY, run CMD with it held (renewing it), release it when CMD exits, and ' +
        "exit with CMD's exit code.",
    )
    .argument('<key>', 'the lock to hold, e.g. nightly-report')
    .argument('<cmd...>', 'the command and its arguments (put -- before it)')
    .option(
      '--ttl <duration>',
      'lease time-to-live; a crashed distlock frees the lock after this',
      '30s',
    )
    .option('--wait <duration>', "how long to wait for the lock ('forever' never gives up)", '10s')
    .option('--no-wait', 'fail at once (exit 75) if the lock is held')
    .option(
      '--grace <duration>',
      'SIGTERM-to-SIGKILL delay when the lock is lost (default: min(2s, ttl/4); at most ttl/4)',
    )
    .option('--foreground', 'keep the command attached to the terminal (see below)')
    .addOption(backendOption())
    .addOption(
      new Option('--limit <n>', 'semaphore mode: up to N holders at once (not supported yet)'),
    )
    .option('-v, --verbose', 'report acquiring and releasing on stderr')
    .addHelpText('after', `${RUN_HELP}\n\n${BACKENDS_HELP}`)
    .action(async (key: string, cmd: string[], opts: Record<string, unknown>) => {
      if (opts.limit !== undefined) {
        throw new UsageError('--limit: semaphore mode is not supported yet');
      }
      const ttlMs = duration('--ttl', String(opts.ttl));
      if (ttlMs < MIN_TTL_MS) throw new UsageError(`--ttl: must be at least ${MIN_TTL_MS}ms`);
      const [command, ...args] = cmd;
      if (command === undefined || command === '')
        throw new UsageError('no command given after --');
      result.exitCode = await runUnderLock({
        key,
        command,
        args,
        ttlMs,
        waitMs: waitOption(opts.wait as string | boolean | undefined),
        graceMs: opts.grace === undefined ? undefined : duration('--grace', String(opts.grace)),
        backendUrl: opts.backend as string | undefined,
        foreground: opts.foreground === true,
        verbose: opts.verbose === true,
      });
    });

  configure(program.command('status'), 'distlock status')
    .summary('show who holds KEY (exit 0 if held, 1 if free)')
    .description(
      'Show the holder of KEY: token prefix, fence and time left. Exits 0 when the key is held, 1 when it is free.',
    )
    .argument('<key>', 'the lock to look at')
    .option('--json', 'print JSON: {key, held, tokenPrefix, fence, remainingMs, waiters?}')
    .addOption(backendOption())
    .action(async (key: string, opts: { json?: boolean; backend?: string }) => {
      result.exitCode = await statusCommand(key, {
        backendUrl: opts.backend,
        json: opts.json === true,
      });
    });

  configure(program.command('list'), 'distlock list')
    .summary('list held locks whose key starts with PREFIX')
    .description('List held locks whose key starts with PREFIX (all when omitted), sorted by key.')
    .argument('[prefix]', 'only keys starting with this', '')
    .option(
      '--json',
      'print a JSON array of {key, held, tokenPrefix, fence, remainingMs, waiters?}',
    )
    .addOption(backendOption())
    .action(async (prefix: string, opts: { json?: boolean; backend?: string }) => {
      result.exitCode = await listCommand(prefix, {
        backendUrl: opts.backend,
        json: opts.json === true,
      });
    });

  configure(program.command('release'), 'distlock release')
    .summary('break the lock on KEY, whoever holds it (needs --force)')
    .description(
      'Break the lock on KEY whoever holds it: for a holder that is stuck. A distlock run that held ' +
        'it terminates its command. Asks for confirmation on a terminal unless --yes.',
    )
    .argument('<key>', 'the lock to break')
    .option('--force', 'required: yes, break a lock someone else may hold')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .addOption(backendOption())
    .action(async (key: string, opts: { force?: boolean; yes?: boolean; backend?: string }) => {
      result.exitCode = await releaseCommand(key, {
        backendUrl: opts.backend,
        force: opts.force === true,
        yes: opts.yes === true,
      });
    });

  configure(program.command('demo'), 'distlock demo')
    .summary('run the double-payment demo')
    .description(
      'Run the double-payment demo: worker processes charge the same accounts without a lock, ' +
        'with one, and with one while a worker freezes past its lease. Exits 1 if an invariant ' +
        'broke in a run that used the lock.',
    )
    .option('--workers <n>', 'worker processes per run (default: 4)')
    .option('--payments <n>', 'payments per run (default: 240)')
    .option('--seed <n>', 'seed of the generated payments (default: 42)')
    .option('--json', 'print the result as JSON instead of a table')
    .addOption(backendOption())
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      result.exitCode = await demoCommand({
        backendUrl: opts.backend as string | undefined,
        workers: integer('--workers', opts.workers),
        payments: integer('--payments', opts.payments),
        seed: integer('--seed', opts.seed),
        json: opts.json === true,
      });
    });

  return program;
}

/**
 * Parse `argv` (as `process.argv`), run the command, and resolve with the exit code. Expected
 * failures are printed as one line on stderr; nothing is thrown.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const result = { exitCode: ExitCode.OK as number };
  try {
    await buildProgram(result).parseAsync([...argv]);
    return result.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; real parse errors were printed by commander.
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const exitCode = exitCodeFor(error);
    const backend = openedBackendLabel();
    printError(
      exitCode === ExitCode.UNAVAILABLE && backend !== undefined
        ? `backend ${backend} is unavailable: ${describeError(error)}`
        : describeError(error),
    );
    if (
      exitCode === ExitCode.INTERNAL &&
      process.env.DISTLOCK_DEBUG === '1' &&
      error instanceof Error
    ) {
      process.stderr.write(`${error.stack ?? ''}\n`);
    }
    return exitCode;
  }
}
