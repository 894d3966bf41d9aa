/**
 * Installs the servers of `REQUIRED_SERVERS` that are missing, once per test run (from the vitest
 * global setup), before any test file starts.
 *
 * Why once and serialised: apt refuses to run twice at the same time (`Could not get lock
 * /var/lib/apt/lists/lock`), so test files installing their own servers in parallel workers failed
 * on a fresh machine. Here one process installs, holding a machine-wide file lock (`flock(1)`, so
 * that two test runs on one machine — two clones, two CI jobs — take turns) and passing
 * `-o DPkg::Lock::Timeout=120` so that apt waits for any other apt user instead of failing. Whoever
 * gets the lock second looks again and finds nothing left to install.
 *
 * Not as root: it fails at once with the exact command to run. Run by hand:
 * `npx tsx test/harness/install-servers.ts`.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  installCommand,
  missingCommands,
  REQUIRED_SERVERS,
  type RequiredServer,
} from './servers.js';

/** Options of {@link installMissingServers}; the defaults are the real machine's. */
export interface InstallServersOptions {
  /** @default REQUIRED_SERVERS */
  readonly servers?: readonly RequiredServer[];
  /** Where executables are looked up, and the environment apt-get runs with. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default whether this process runs as root */
  readonly isRoot?: boolean;
  /** The machine-wide lock file installers take turns on. @default /var/lock/distlock-test-servers.lock */
  readonly lockPath?: string;
  /** How long to wait for another installer to finish. @default 600 */
  readonly lockTimeoutS?: number;
  /** Receives one line per package installed. @default console.log */
  readonly log?: (line: string) => void;
}

/** What {@link installMissingServers} did. */
export interface InstallReport {
  /** Debian packages installed by this call (empty when nothing was missing). */
  readonly installedPackages: readonly string[];
}

const DEFAULT_LOCK_PATH = '/var/lock/distlock-test-servers.lock';
/** apt waits this long for another apt (unattended upgrades, another CI job) to let go. */
const APT_LOCK_TIMEOUT_S = 120;

interface Missing {
  readonly server: RequiredServer;
  readonly commands: readonly string[];
}

function findMissing(servers: readonly RequiredServer[], env: NodeJS.ProcessEnv): Missing[] {
  return servers
    .map((server) => ({ server, commands: missingCommands(server, env) }))
    .filter(({ commands }) => commands.length > 0);
}

function describeMissing({ server, commands }: Missing): string {
  const from = 'apt' in server.source ? server.source.apt.join(' ') : `npm ${server.source.npm}`;
  return `${from}: ${commands.join(', ')} not found (${server.purpose})`;
}

/** Run a command to completion; rejects with its output's tail if it fails or times out. */
function run(
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; timeoutMs: number; stdio?: Array<'ignore' | 'pipe' | number> },
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
    });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) return resolvePromise();
      const how =
        signal === null ? `exit code ${code}` : `${signal} (time limit ${options.timeoutMs} ms?)`;
      reject(new Error(`${command} ${args.join(' ')} failed with ${how}:\n${output}`));
    });
  });
}

/**
 * Hold the machine-wide install lock while `body` runs. `flock(1)` locks the open file that this
 * process passes it as fd 3; the lock belongs to that open file, so it stays held after flock
 * exits, until this process closes the file (or dies: the kernel releases it, nothing goes stale).
 */
async function withInstallLock<T>(
  path: string,
  timeoutS: number,
  env: NodeJS.ProcessEnv,
  body: () => Promise<T>,
): Promise<T> {
  const fd = openSync(path, 'a');
  try {
    await run('flock', ['--exclusive', '--wait', String(timeoutS), '3'], {
      env,
      timeoutMs: (timeoutS + 30) * 1_000,
      stdio: ['ignore', 'pipe', 'pipe', fd],
    }).catch((error: unknown) => {
      const notFound = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new Error(
        notFound
          ? 'flock(1) is not installed (Debian: util-linux); it keeps installers from overlapping'
          : `another installer held ${path} for more than ${timeoutS} s`,
        { cause: error },
      );
    });
    return await body();
  } finally {
    closeSync(fd);
  }
}

/**
 * Install every server in `servers` that is missing, as root, with one message per package;
 * resolves at once when nothing is missing.
 *
 * @throws when not root (the message has the exact command to run), when an npm-sourced server is
 *   missing (`npm ci`), or when apt fails or a server is still missing afterwards.
 */
export async function installMissingServers(
  options: InstallServersOptions = {},
): Promise<InstallReport> {
  const servers = options.servers ?? REQUIRED_SERVERS;
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => console.log(line));
  const isRoot = options.isRoot ?? process.getuid?.() === 0;

  const missing = findMissing(servers, env);
  if (missing.length === 0) return { installedPackages: [] };

  const fromNpm = missing.some(({ server }) => 'npm' in server.source);
  if (fromNpm || !isRoot) {
    const fromApt = missing.some(({ server }) => 'apt' in server.source);
    const how = installCommand(
      missing.map(({ server }) => server),
      !isRoot,
    );
    throw new Error(
      'The tests need servers that are not installed:\n' +
        missing.map((entry) => `  ${describeMissing(entry)}\n`).join('') +
        (fromApt && !isRoot ? 'Not running as root, so not installing them. ' : '') +
        `Install them with:\n  ${how}`,
    );
  }

  return withInstallLock(
    options.lockPath ?? DEFAULT_LOCK_PATH,
    options.lockTimeoutS ?? 600,
    env,
    async () => {
      // Another installer may have finished while this one waited for the lock.
      const stillMissing = findMissing(servers, env);
      if (stillMissing.length === 0) return { installedPackages: [] };
      const packages = [
        ...new Set(
          stillMissing.flatMap(({ server }) => ('apt' in server.source ? server.source.apt : [])),
        ),
      ];
      for (const entry of stillMissing) log(`distlock tests: installing ${describeMissing(entry)}`);
      const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
      const aptLock = ['-o', `DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT_S}`];
      await run('apt-get', [...aptLock, 'update', '-qq'], { env: aptEnv, timeoutMs: 300_000 });
      await run('apt-get', [...aptLock, 'install', '-y', '-qq', ...packages], {
        env: aptEnv,
        timeoutMs: 900_000,
      });
      const after = findMissing(servers, env);
      if (after.length > 0) {
        throw new Error(
          `still missing after apt-get install -y ${packages.join(' ')}:\n` +
            after.map((entry) => `  ${describeMissing(entry)}`).join('\n'),
        );
      }
      log(`distlock tests: installed ${packages.join(' ')}`);
      return { installedPackages: packages };
    },
  );
}

// `npx tsx test/harness/install-servers.ts`: install what the tests need, then exit.
if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href
) {
  installMissingServers().then(
    ({ installedPackages }) => {
      if (installedPackages.length === 0) console.log('distlock tests: every server is installed');
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    },
  );
}
