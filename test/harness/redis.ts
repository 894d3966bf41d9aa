/**
 * Spawns real `redis-server` processes (Debian's redis-server) on free loopback ports, without
 * persistence: a standalone server (which can be killed and restarted on the same port) and a
 * 3-master Redis Cluster made with `redis-cli --cluster create`.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  freePort,
  killAndWait,
  spawnServer,
  startOnFreePorts,
  tempDir,
  waitUntil,
  WillNotHappen,
} from './process.js';
import { requireCommand } from './servers.js';

const run = promisify(execFile);

export function ensureRedis(): void {
  requireCommand('redis', 'redis-server');
  requireCommand('redis', 'redis-cli');
}

/** Run `redis-cli`; `password` (a server's `--requirepass`) goes through the environment. */
export async function redisCli(port: number, args: string[], password?: string): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 10_000,
    ...(password === undefined ? {} : { env: { ...process.env, REDISCLI_AUTH: password } }),
  });
  return stdout;
}

/** The `--requirepass` among a server's arguments. */
function passwordIn(args: readonly string[]): string | undefined {
  const at = args.indexOf('--requirepass');
  return at < 0 ? undefined : args[at + 1];
}

/**
 * Wait until `child` answers on `port`. The answer must come from `child` itself (its process
 * id): if the port was taken, another test's server may answer while `child` is still exiting.
 */
export async function waitForPing(
  port: number,
  child: ChildProcess & { output: () => string },
  password?: string,
) {
  try {
    await waitUntil(
      `redis-server on port ${port}`,
      async () => {
        if (child.exitCode !== null) {
          throw new WillNotHappen(`redis-server exited:\n${child.output()}`);
        }
        const info = await redisCli(port, ['info', 'server'], password);
        const pid = /process_id:(\d+)/.exec(info)?.[1];
        if (pid !== undefined && Number(pid) !== child.pid) {
          throw new WillNotHappen(`port ${port} is another redis-server's (pid ${pid})`);
        }
        return pid !== undefined;
      },
      10_000,
    );
  } catch (error) {
    await killAndWait(child);
    throw error;
  }
}

/** A running standalone redis-server. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly process: ChildProcess;
  /** Run a `redis-cli` command against it, e.g. `['client', 'kill', 'type', 'normal']`. */
  cli(args: string[]): Promise<string>;
  /** SIGKILL the server (its data is gone: no persistence). */
  kill(): Promise<void>;
  /** Start a fresh server on the same port after `kill()`. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Start a standalone redis-server on a free loopback port, with `args` added to its command line
 * (e.g. `['--requirepass', 'pw']`); without persistence unless `args` turn it on (then give it its
 * own `--dir`: `restart()` reloads from there).
 *
 * @example
 * ```ts
 * const redis = await startRedis();
 * const backend = redisBackend({ url: redis.url });
 * await redis.stop();
 * ```
 */
export async function startRedis(options: { args?: readonly string[] } = {}): Promise<RedisServer> {
  ensureRedis();
  return startOnFreePorts(() => startRedisOnce(options.args ?? []));
}

/** `extraArgs` follow (and override) the defaults, e.g. `['--appendonly', 'yes', '--dir', dir]`. */
async function startRedisOnce(extraArgs: readonly string[]): Promise<RedisServer> {
  const port = await freePort();
  const spawnOne = async () => {
    const child = spawnServer('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...extraArgs,
    ]);
    await waitForPing(port, child, passwordIn(extraArgs));
    return child;
  };
  let child = await spawnOne();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get process() {
      return child;
    },
    cli: (args) => redisCli(port, args, passwordIn(extraArgs)),
    kill: () => killAndWait(child),
    async restart() {
      await killAndWait(child);
      child = await spawnOne();
    },
    stop: () => killAndWait(child),
  };
}

/** A running 3-master Redis Cluster. */
export interface RedisCluster {
  /** Client ports of the masters. */
  readonly ports: readonly number[];
  /** Startup nodes for `new Cluster(nodes)`. */
  readonly nodes: readonly { host: string; port: number }[];
  /** The masters' processes, in the order of `ports` (to kill or pause one in a fault test). */
  readonly processes: readonly ChildProcess[];
  stop(): Promise<void>;
}

/**
 * Start a 3-master Redis Cluster (no replicas) with `redis-cli --cluster create`, and wait for
 * `cluster_state:ok` on every node.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  ensureRedis();
  return startOnFreePorts(startRedisClusterOnce);
}

async function startRedisClusterOnce(): Promise<RedisCluster> {
  const dir = tempDir('distlock-redis-cluster-');
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(children.map((child) => killAndWait(child)));
    dir.remove();
  };
  try {
    for (let i = 0; i < 3; i += 1) {
      const port = await freePort();
      let busPort = await freePort();
      while (busPort === port) busPort = await freePort();
      const nodeDir = join(dir.path, String(port));
      mkdirSync(nodeDir);
      const child = spawnServer('redis-server', [
        '--port',
        String(port),
        '--cluster-port',
        String(busPort),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--dir',
        nodeDir,
        '--save',
        '',
        '--appendonly',
        'no',
      ]);
      children.push(child);
      ports.push(port);
      await waitForPing(port, child);
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 20_000 },
    );
    for (const port of ports) {
      await waitUntil(
        `cluster_state:ok on ${port}`,
        async () => (await redisCli(port, ['cluster', 'info'])).includes('cluster_state:ok'),
        15_000,
        50,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    processes: children,
    stop,
  };
}
