/**
 * The servers a benchmark run spawns for itself: one `redis-server` without persistence and one
 * single-member `etcd`, on free loopback ports with temporary directories. Every started server is
 * tracked so that `stopAllServers` (and, as a last resort, the process `exit` hook) kills it.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { Etcd3 } from 'etcd3';
import {
  ensureCommand,
  freePort,
  killAndWait,
  spawnServer,
  tempDir,
  waitUntil,
} from '../test/harness/process.js';

/** A running server and how to reach and stop it. */
export interface RunningServer {
  readonly name: string;
  readonly port: number;
  /** `redis-server --version` / `etcd --version`, first line. */
  readonly version: string;
  stop(): Promise<void>;
}

const running = new Set<{ child: ChildProcess; stop: () => Promise<void> }>();

process.on('exit', () => {
  // Synchronous last resort (an uncaught error, process.exit): never leave a server behind.
  for (const { child } of running) child.kill('SIGKILL');
});

function track(child: ChildProcess, cleanup: () => void): () => Promise<void> {
  const entry = {
    child,
    stop: async () => {
      running.delete(entry);
      await killAndWait(child);
      cleanup();
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
  ensureCommand('redis-server', ['redis-server']);
  const port = await freePort();
  const dir = tempDir('distlock-bench-redis-');
  const child = spawnServer('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir.path,
  ]);
  const stop = track(child, dir.remove);
  try {
    await waitUntil('redis-server to answer PING', async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited:\n${child.output()}`);
      const probe = new Redis({
        host: '127.0.0.1',
        port,
        lazyConnect: true,
        retryStrategy: () => null,
      });
      probe.on('error', () => undefined); // refused until the server listens: expected
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        probe.disconnect();
      }
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { name: 'redis', port, version: versionOf('redis-server', ['--version']), stop };
}

/** Start a single etcd member with a temporary data dir and wait until it serves a read. */
export async function startEtcd(): Promise<RunningServer> {
  ensureCommand('etcd', ['etcd-server']);
  const [port, peerPort] = [await freePort(), await freePort()];
  const dir = tempDir('distlock-bench-etcd-');
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawnServer('etcd', [
    '--name',
    'bench',
    '--data-dir',
    `${dir.path}/data`,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `bench=${peer}`,
    '--initial-cluster-state',
    'new',
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
  ]);
  const stop = track(child, dir.remove);
  try {
    await waitUntil('etcd to serve a read', async () => {
      if (child.exitCode !== null) throw new Error(`etcd exited:\n${child.output()}`);
      const probe = new Etcd3({ hosts: client });
      try {
        await probe.get('bench:probe').string();
        return true;
      } finally {
        probe.close();
      }
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { name: 'etcd', port, version: versionOf('etcd', ['--version']), stop };
}
