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
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runToEnd, withFileLock } from './process.js';
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

  return withFileLock(
    options.lockPath ?? DEFAULT_LOCK_PATH,
    options.lockTimeoutS ?? 600,
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
      await runToEnd('apt-get', [...aptLock, 'update', '-qq'], {
        env: aptEnv,
        timeoutMs: 300_000,
      });
      await runToEnd('apt-get', [...aptLock, 'install', '-y', '-qq', ...packages], {
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
