/**
 * The servers a benchmark run spawns for itself: one `redis-server` without persistence and one
 * single-member `etcd`, on free loopback ports with temporary directories — started by the same
 * harness the tests use. Every started server is tracked so that `stopAllServers` (and, as a last
 * resort, the process `exit` hook) kills it.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { azuritePackage, startAzurite as startAzuriteServer } from '../test/harness/azurite.js';
import { startEtcd as startEtcdServer } from '../test/harness/etcd.js';
import { postgresBinDir, startPostgres as startPostgresServer } from '../test/harness/postgres.js';
import { startRedis as startRedisServer } from '../test/harness/redis.js';

/** A running server and how to reach and stop it. */
export interface RunningServer {
  readonly name: string;
  readonly port: number;
  /** How clients reach it, where a URL says more than a port (PostgreSQL: with its password). */
  readonly url?: string;
  /** `redis-server --version` / `etcd --version`, first line. */
  readonly version: string;
  /** Every node's port, for a group of independent servers (Redlock's five nodes). */
  readonly ports?: readonly number[];
  stop(): Promise<void>;
}

const running = new Set<{ processes: () => ChildProcess[]; stop: () => Promise<void> }>();

process.on('exit', () => {
  // Synchronous last resort (an uncaught error, process.exit): never leave a server behind.
  for (const { processes } of running) for (const child of processes()) child.kill('SIGKILL');
});

function track(
  processes: () => ChildProcess[],
  stopServer: () => Promise<void>,
): () => Promise<void> {
  const entry = {
    processes,
    stop: async () => {
      if (!running.delete(entry)) return;
      await stopServer();
    },
  };
  running.add(entry);
  return entry.stop;
}

/** Stop every server this process started (idempotent). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((entry) => entry.stop()));
}

function versionOf(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8' }).split('\n')[0]?.trim() ?? '?';
}

/** Start `redis-server --save '' --appendonly no` and wait until it answers PING. */
export async function startRedis(): Promise<RunningServer> {
  const server = await startRedisServer();
  const stop = track(
    () => [server.process],
    () => server.stop(),
  );
  return {
    name: 'redis',
    port: server.port,
    version: versionOf('redis-server', ['--version']),
    stop,
  };
}

/** Start five independent `redis-server`s without persistence (Redlock's nodes). */
export async function startRedlockNodes(): Promise<RunningServer> {
  const servers = await Promise.all([1, 2, 3, 4, 5].map(() => startRedisServer()));
  const stop = track(
    () => servers.map((server) => server.process),
    async () => {
      await Promise.all(servers.map((server) => server.stop()));
    },
  );
  return {
    name: 'redlock',
    port: servers[0]!.port,
    ports: servers.map((server) => server.port),
    version: `5 × ${versionOf('redis-server', ['--version'])}`,
    stop,
  };
}

/** Start a single etcd member with a temporary data dir and wait until it is healthy. */
export async function startEtcd(): Promise<RunningServer> {
  const server = await startEtcdServer(1);
  const stop = track(
    () => server.members.map((member) => member.process),
    () => server.stop(),
  );
  const port = Number(server.endpoints[0]!.split(':')[1]);
  return { name: 'etcd', port, version: versionOf('etcd', ['--version']), stop };
}

/**
 * Start a throw-away PostgreSQL cluster (`fsync=off`, as the tests' harness does: commits cost no
 * disk flush, so the figures are round trips and server work, not the disk).
 */
export async function startPostgres(): Promise<RunningServer> {
  const server = await startPostgresServer();
  const stop = track(
    () => [],
    () => server.stop(),
  );
  return {
    name: 'postgres',
    port: server.port,
    url: server.url,
    version: versionOf(`${postgresBinDir()}/postgres`, ['--version']),
    stop,
  };
}

/** Start Azurite's blob service in memory (the `azurite` devDependency). `url`: its connection string. */
export async function startAzurite(): Promise<RunningServer> {
  const server = await startAzuriteServer();
  const stop = track(
    () => [server.process],
    () => server.stop(),
  );
  return {
    name: 'azure-blob',
    port: server.port,
    url: server.connectionString(),
    version: `Azurite ${azuritePackage().version}`,
    stop,
  };
}
