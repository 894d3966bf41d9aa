/**
 * The `distlock` command line: argument parsing (commander), help text, and mapping every outcome
 * to an exit code. Each command's work lives in its own module.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { defaultLockDir, parseDuration } from '../backend-url.js';
import { describeFailure, exitCodeFor, UsageError } from './cli-error.js';
import { demoCommand } from './demo-command.js';
import { EXIT_CODES_HELP, ExitCode } from './exit-codes.js';
import { listCommand, releaseCommand, statusCommand } from './inspect-commands.js';
import { BACKEND_URL_ENV, openedBackendLabel } from './open-locks.js';
import { printError } from './output.js';
import { separateRunCommand } from './run-arguments.js';
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
  redlock://[user:password@]h1:6379,h2:6379,h3:6379[/db]   Redlock over an odd number
                                    (>= 3) of independent Redis masters
  azblob://CONTAINER                Azure blob leases; the account from $AZURE_STORAGE_CONNECTION_STRING
  https://ACCOUNT.blob.core.windows.net/CONTAINER?SAS   the same, by a container URL with a SAS
  Passwords, account keys and SAS signatures are never printed.

Durations: 500ms, 30s, 5m, 1h, or a bare number of seconds (5 = 5s, as for flock -w).`;

const RUN_HELP = `
distlock's options come before the command; everything from the command's name on is the
command's own (distlock run deploy make -j4 needs no --). Put -- before the command when its name
starts with '-'. With -c, the script runs with /bin/sh -c. With no command at all, distlock holds
the lock until SIGINT, SIGTERM or SIGHUP, then releases it and exits 0 (like etcdctl lock NAME).

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
  distlock run nightly-report ./report.sh --date today
  distlock run deploy -c 'git pull && make deploy'         # a shell string
  distlock run --no-wait migrate -- npm run migrate        # exit 75 at once if someone else migrates
  distlock run --no-wait -E 0 cron-job ./job.sh            # exit 0 at once if it runs elsewhere
  distlock run maintenance                                 # hold the lock until Ctrl-C
  DISTLOCK_URL=redis://cache:6379 distlock run --ttl 1m --wait 5m deploy -- ./deploy.sh

${EXIT_CODES_HELP}`;

function packageVersion(): string {
  try {
    // The package's own package.json, by name (a self-reference): the same from src/ and dist/.
    const { version } = createRequire(import.meta.url)('distlock/package.json') as {
      version?: unknown;
    };
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

/** An exit code to use instead of one of distlock's: 0…255. */
function exitCodeOption(option: string, value: unknown): number | undefined {
  const code = integer(option, value as string | undefined);
  if (code !== undefined && code > 255) {
    throw new UsageError(`${option}: ${code} is not an exit code (0…255)`);
  }
  return code;
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
      outputError: (message) => {
        const text = message.trim().replace(/^error:\s*/i, '');
        // distlock run reads options up to the command's name: one before it that run does not
        // know may well be the command's own.
        const toCommand =
          hint === 'distlock run' && /^unknown option/.test(text)
            ? "; if it is the command's, put it after the command's name, or put -- before the command"
            : '';
        printError(`${text}${toCommand} (see '${hint} --help')`);
      },
    })
    .showSuggestionAfterError(true);
}

/** What a parsed command line did. */
export interface ProgramResult {
  exitCode: number;
  /** The subcommand that ran (`run`, `status`…), once its action started. */
  command: string | undefined;
}

/**
 * Build the `distlock` program. Each action stores its exit code in `result.exitCode`, and the
 * subcommand's name in `result.command` as it starts (error messages name it).
 */
export function buildProgram(result: ProgramResult): Command {
  const program = configure(new Command('distlock'), 'distlock')
    .description(
      'Run a command while holding a distributed lock, and inspect or break locks, on files, ' +
        'Redis or etcd.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .addHelpText('after', `\n${BACKENDS_HELP}\n\n${EXIT_CODES_HELP}`)
    .hook('preAction', (_program, action) => {
      result.command = action.name();
    });

  const backendOption = () =>
    new Option('-b, --backend <url>', `where the locks live (default: $${BACKEND_URL_ENV})`);

  configure(program.command('run'), 'distlock run')
    .summary('run a command while holding the lock on KEY (or just hold it)')
    .description(
      'Take the lock on KEY, run CMD with it held (renewing it), release it when CMD exits, and ' +
        "exit with CMD's exit code. Without CMD, hold the lock until SIGINT/SIGTERM/SIGHUP.",
    )
    .usage('[options] KEY [CMD [ARGS...]]')
    .argument('<key>', 'the lock to hold, e.g. nightly-report')
    .argument('[cmd...]', 'the command and its arguments; none: hold the lock until a signal')
    .option('-c, --shell <script>', 'run SCRIPT with /bin/sh -c instead of CMD')
    .option(
      '--ttl <duration>',
      'lease time-to-live; a crashed distlock frees the lock after this',
      '30s',
    )
    .option('--wait <duration>', "how long to wait for the lock ('forever' never gives up)", '10s')
    .option('--no-wait', 'fail at once (exit 75) if the lock is held')
    .option(
      '-E, --conflict-exit-code <n>',
      'exit code when the lock is held (--no-wait) or not acquired in time (default: 75)',
    )
    .option(
      '--grace <duration>',
      'SIGTERM-to-SIGKILL delay when the lock is lost (default: min(2s, ttl/4); at most ttl/4)',
    )
    .option('--foreground', 'keep the command attached to the terminal (see below)')
    .addOption(backendOption())
    .option('-s, --shared', 'take a read share: other --shared holders may hold KEY too (flock -s)')
    .option(
      '--limit <n>',
      'take one of N permits: up to N holders of KEY at once (a semaphore; all must pass the same N)',
    )
    .option('-v, --verbose', 'report acquiring and releasing on stderr')
    .addHelpText('after', `${RUN_HELP}\n\n${BACKENDS_HELP}`)
    .action(async (key: string, cmd: string[], opts: Record<string, unknown>) => {
      const limit = integer('--limit', opts.limit as string | undefined);
      if (limit !== undefined && limit < 1) throw new UsageError('--limit: must be at least 1');
      if (limit !== undefined && opts.shared === true) {
        throw new UsageError('--shared and --limit: choose one (a read share, or a permit)');
      }
      const ttlMs = duration('--ttl', String(opts.ttl));
      if (ttlMs < MIN_TTL_MS) throw new UsageError(`--ttl: must be at least ${MIN_TTL_MS}ms`);
      const script = opts.shell as string | undefined;
      if (script !== undefined && cmd.length > 0) {
        throw new UsageError(
          `-c runs a shell script; a command was given too (${cmd.join(' ')}): use one or the other`,
        );
      }
      if (script !== undefined && script.trim() === '') throw new UsageError('-c: empty script');
      const [command, ...args] = script === undefined ? cmd : ['/bin/sh', '-c', script];
      if (command === '') throw new UsageError('the command is an empty string');
      result.exitCode = await runUnderLock({
        key,
        command,
        args,
        ttlMs,
        waitMs: waitOption(opts.wait as string | boolean | undefined),
        graceMs: opts.grace === undefined ? undefined : duration('--grace', String(opts.grace)),
        conflictExitCode:
          exitCodeOption('--conflict-exit-code', opts.conflictExitCode) ?? ExitCode.NOT_ACQUIRED,
        backendUrl: opts.backend as string | undefined,
        hold: limit !== undefined ? { limit } : opts.shared === true ? 'shared' : 'exclusive',
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
  const result: ProgramResult = { exitCode: ExitCode.OK, command: undefined };
  try {
    const program = buildProgram(result);
    const run = program.commands.find((command) => command.name() === 'run');
    await program.parseAsync(run === undefined ? [...argv] : separateRunCommand(argv, run));
    return result.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; real parse errors were printed by commander.
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const exitCode = exitCodeFor(error);
    printError(describeFailure(error, { command: result.command, backend: openedBackendLabel() }));
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
