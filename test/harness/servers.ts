/**
 * The servers the tests spawn, in ONE table: what each is for, which executables the harness runs,
 * and where they come from. The global setup (`test/global-setup.ts`) installs whatever is missing
 * from this table once, before any test file runs; the harnesses only check (`requireCommand`).
 *
 * A new backend's server goes here, and nowhere else. Notes for the ones to come:
 * - Redis Sentinel needs no entry: `redis-server --sentinel` is Sentinel (the redis-server package).
 * - Azurite comes from npm, not apt: add it as a devDependency and an entry with
 *   `source: { npm: 'azurite' }` and `commands: ['azurite-blob']` (found in node_modules/.bin).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where a server comes from: Debian packages (installed as root), or an npm devDependency. */
export type ServerSource = { readonly apt: readonly string[] } | { readonly npm: string };

/** One server the tests need. */
export interface RequiredServer {
  /** A short name, e.g. `redis`. */
  readonly name: string;
  /** What the tests use it for (shown when it is missing). */
  readonly purpose: string;
  /** Executables the harness runs; the server counts as installed when all are found. */
  readonly commands: readonly string[];
  readonly source: ServerSource;
  /**
   * Directories searched after PATH, for servers that keep their executables off PATH.
   * @default none
   */
  readonly extraBinDirs?: (env: NodeJS.ProcessEnv) => readonly string[];
}

const NODE_MODULES_BIN = fileURLToPath(new URL('../../node_modules/.bin', import.meta.url));

/**
 * PostgreSQL's server executables (initdb, pg_ctl, postgres) live in
 * /usr/lib/postgresql/<version>/bin, not on PATH: ask `pg_config --bindir` (from
 * postgresql-common), then look at the installed versions, newest first.
 */
function postgresBinDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs: string[] = [];
  try {
    const bindir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    }).trim();
    if (bindir !== '') dirs.push(bindir);
  } catch {
    // no pg_config: look at the versions installed
  }
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    dirs.push(...versions.map((version) => `/usr/lib/postgresql/${version}/bin`));
  } catch {
    // PostgreSQL is not installed
  }
  return dirs;
}

/** Every server the test suite spawns. Extend this table; nothing else installs servers. */
export const REQUIRED_SERVERS: readonly RequiredServer[] = Object.freeze([
  {
    name: 'redis',
    purpose: 'Redis, Redis Cluster and Redis Sentinel (redis-server --sentinel)',
    commands: ['redis-server', 'redis-cli'],
    source: { apt: ['redis-server'] },
  },
  {
    name: 'etcd',
    purpose: 'etcd members and clusters',
    commands: ['etcd', 'etcdctl'],
    source: { apt: ['etcd-server', 'etcd-client'] },
  },
  {
    name: 'postgresql',
    purpose: 'PostgreSQL (initdb and pg_ctl in a temporary directory)',
    commands: ['initdb', 'pg_ctl'],
    source: { apt: ['postgresql'] },
    extraBinDirs: postgresBinDirs,
  },
]);

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The absolute path of one of `server`'s executables, or undefined when it is not installed:
 * PATH first, then the server's own directories (and node_modules/.bin for npm servers).
 */
export function locateCommand(
  server: RequiredServer,
  command: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const dirs = [
    ...(env.PATH ?? '').split(delimiter).filter((dir) => dir !== ''),
    ...('npm' in server.source ? [NODE_MODULES_BIN] : []),
  ];
  for (const dir of dirs) {
    const path = join(dir, command);
    if (isExecutable(path)) return path;
  }
  for (const dir of server.extraBinDirs?.(env) ?? []) {
    const path = join(dir, command);
    if (isExecutable(path)) return path;
  }
  return undefined;
}

/** The executables of `server` that are not installed. */
export function missingCommands(
  server: RequiredServer,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  return server.commands.filter((command) => locateCommand(server, command, env) === undefined);
}

/** How to install `servers` by hand: the exact command line. */
export function installCommand(servers: readonly RequiredServer[], sudo: boolean): string {
  const apt = servers.flatMap((server) => ('apt' in server.source ? server.source.apt : []));
  const npm = servers.some((server) => 'npm' in server.source);
  const parts: string[] = [];
  if (apt.length > 0) {
    const s = sudo ? 'sudo ' : '';
    parts.push(`${s}apt-get update && ${s}apt-get install -y ${[...new Set(apt)].join(' ')}`);
  }
  if (npm) parts.push('npm ci');
  return parts.join(' && ');
}

function serverNamed(name: string): RequiredServer {
  const server = REQUIRED_SERVERS.find((candidate) => candidate.name === name);
  if (server === undefined) throw new Error(`no server "${name}" in REQUIRED_SERVERS`);
  return server;
}

/**
 * The path of a server's executable, for a harness about to spawn it. Only checks: the global
 * setup installs missing servers before any test file runs. A missing server is a test failure,
 * never a skip.
 *
 * @example
 * ```ts
 * const initdb = requireCommand('postgresql', 'initdb'); // /usr/lib/postgresql/15/bin/initdb
 * ```
 */
export function requireCommand(serverName: string, command: string): string {
  const server = serverNamed(serverName);
  if (!server.commands.includes(command)) {
    throw new Error(`"${command}" is not listed for "${serverName}" in REQUIRED_SERVERS`);
  }
  const path = locateCommand(server, command);
  if (path !== undefined) return path;
  throw new Error(
    `"${command}" (${server.purpose}) is not installed. The test run's global setup installs it ` +
      `when run as root (npm test); otherwise install it with: ${installCommand([server], process.getuid?.() !== 0)}`,
  );
}
