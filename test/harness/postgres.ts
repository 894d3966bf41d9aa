/**
 * Spawns a throw-away PostgreSQL cluster (Debian's `postgresql` server binaries): `initdb` in a
 * temporary directory, `pg_ctl start` on a free loopback port, removed again on `stop()`. As root
 * (which `initdb` refuses to run as) the cluster runs as the `postgres` user. TCP connections need
 * the generated password (SCRAM), so that tests can also present a wrong one; `fsync` is off.
 */
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, startOnFreePorts, tempDir } from './process.js';
import { requireCommand } from './servers.js';

const run = promisify(execFile);

/**
 * The directory of the server's binaries (`initdb`, `pg_ctl`, `postgres`), as the table of required
 * servers finds them (the global setup installs them first).
 */
export function postgresBinDir(): string {
  return dirname(requireCommand('postgresql', 'initdb'));
}

/** A running throw-away cluster. */
export interface PostgresServer {
  readonly port: number;
  /** The superuser's password (TCP connections need it). */
  readonly password: string;
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** A URL for `database` as `user` with `password` (defaults: the superuser's). */
  urlFor(options?: { user?: string; password?: string; database?: string }): string;
  /** Run SQL as the superuser on a fresh connection. */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<R[]>;
  /** `pg_terminate_backend(pid)` for each pid; true if each was terminated. */
  terminate(...pids: number[]): Promise<boolean>;
  /** Stop the server (`fast`: clean shutdown; `immediate`: like a crash) and start it again on the same port. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stop the server and remove its directory. */
  stop(): Promise<void>;
}

/** Commands as the cluster's owner: `postgres` when we are root. */
function asOwner(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0
    ? ['runuser', ['-u', 'postgres', '--', command, ...args]]
    : [command, args];
}

async function owner(command: string, args: string[], timeout = 60_000): Promise<void> {
  const [file, argv] = asOwner(command, args);
  await run(file, argv, { timeout });
}

/** Every started cluster, stopped (synchronously) if the test process exits without stopping it. */
const running = new Map<string, () => void>();
process.on('exit', () => {
  for (const stop of running.values()) stop();
});

/**
 * Start a fresh cluster on a free loopback port.
 *
 * @example
 * ```ts
 * const server = await startPostgres();
 * const backend = postgresBackend({ url: server.url });
 * await server.stop();
 * ```
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const dir = tempDir('distlock-postgres-');
  const data = join(dir.path, 'data');
  const log = join(dir.path, 'log');
  const password = randomBytes(12).toString('base64url');
  const pwfile = join(dir.path, 'pwfile');
  writeFileSync(pwfile, `${password}\n`);
  if (process.getuid?.() === 0) {
    execFileSync('chown', ['-R', 'postgres:', dir.path]);
  }
  try {
    await owner(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      `--pwfile=${pwfile}`,
      '--no-sync',
      '-E',
      'UTF8',
      '--locale=C',
    ]);
  } catch (error) {
    dir.remove();
    throw error;
  }
  const pgCtl = join(bin, 'pg_ctl');
  const stopSync = () => {
    try {
      const [file, argv] = asOwner(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
      execFileSync(file, argv, { stdio: 'ignore', timeout: 20_000 });
    } catch {
      // not running
    }
    dir.remove();
  };
  running.set(dir.path, stopSync);
  try {
    const port = await startOnFreePorts(async () => {
      const candidate = await freePort();
      await startOn(candidate);
      return candidate;
    });
    return serverAt(port);
  } catch (error) {
    running.delete(dir.path);
    stopSync();
    throw error;
  }

  async function startOn(port: number): Promise<void> {
    await owner(pgCtl, [
      '-D',
      data,
      '-l',
      log,
      '-w',
      '-t',
      '30',
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir.path} -c fsync=off -c max_connections=200`,
      'start',
    ]);
  }

  function serverAt(port: number): PostgresServer {
    const urlFor: PostgresServer['urlFor'] = (options = {}) => {
      const user = encodeURIComponent(options.user ?? 'postgres');
      const secret = encodeURIComponent(options.password ?? password);
      return `postgres://${user}:${secret}@127.0.0.1:${port}/${options.database ?? 'postgres'}`;
    };
    const sql: PostgresServer['sql'] = async (text, values) => {
      const client = new pg.Client({ connectionString: urlFor() });
      await client.connect();
      try {
        return (await client.query(text, values)).rows;
      } finally {
        await client.end();
      }
    };
    return {
      port,
      password,
      url: urlFor(),
      urlFor,
      sql,
      async terminate(...pids) {
        const rows = await sql<{ done: boolean }>(
          'SELECT bool_and(pg_terminate_backend(pid)) AS done FROM unnest($1::int[]) pid',
          [pids],
        );
        return rows[0]?.done === true;
      },
      async restart(mode = 'fast') {
        await owner(pgCtl, ['-D', data, '-m', mode, '-w', 'stop']);
        await startOn(port);
      },
      async stop() {
        running.delete(dir.path);
        await owner(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
        dir.remove();
      },
    };
  }
}
