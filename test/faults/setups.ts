/**
 * The backends the fault suite runs on, one line each in {@link SETUPS}: how to start its servers,
 * how a worker process makes its backend (a module exporting `createBackend()` and the environment
 * it reads, with every server address pointing at that worker's fault proxies), and which fault
 * kinds apply.
 *
 * ## Adding a backend (one line in SETUPS)
 * The worker side is a module exporting `createBackend()` that reads its connection from the
 * environment, as `test/fixtures/redis-backend.ts` does; the server side is the backend's test
 * harness. A harness that starts one server returning `{ port, url, process, restart(), stop() }`
 * (as `startRedis` does; `process` must be the server process itself, to SIGSTOP it, and `url` is
 * any string naming `:port`, a connection string too) joins with {@link singleServer}:
 * ```ts
 * postgres: singleServer({ start: () => startPostgres(), module: fixture('postgres-backend.ts'), env: (url) => ({ DISTLOCK_POSTGRES_URL: url }) }),
 * 'azure-blob': singleServer({ start: () => startAzurite(), module: fixture('azure-blob-backend.ts'), env: (cs) => ({ DISTLOCK_AZURE_CONNECTION_STRING: cs }), ttlMs: 15_000, faults: [...HOLDER_FAULTS, 'server-pause', ...NETWORK_FAULTS] }),
 * 'redis-node': singleServer({ start: redisWithAof, module: fixture('redis-node-backend.ts'), env: (url) => ({ DISTLOCK_REDIS_URL: url }) }),
 * ```
 * Several independent servers (Redlock's five nodes) join with {@link serverGroup}, which makes
 * `server-pause`/`server-restart` hit one node (below quorum) and adds nothing else; list
 * `quorum-pause` in its `faults` to pause a majority (quorum lost):
 * ```ts
 * redlock: serverGroup({ start: (dir) => Promise.all([1, 2, 3, 4, 5].map((i) => redisWithAof(`${dir}/${i}`))), module: fixture('redlock-backend.ts'), env: (urls) => ({ DISTLOCK_REDLOCK_URLS: urls.join(',') }), faults: [...SINGLE_SERVER_FAULTS, 'quorum-pause'] }),
 * ```
 * A store whose restart loses its state (Azurite with `--inMemoryPersistence`, like memory) leaves
 * out `server-restart`: a restart that forgets fences is not a fault the lock can survive. A
 * cluster with a leader implements {@link Deployment} itself, as etcd does below (Redis Sentinel:
 * `leader()` is the current master; its clients reach the master at the address the sentinels
 * announce, so network faults need the sentinels to announce the proxies). Nothing else in the
 * suite changes: `npm run faults -- --backends NAME` runs the new line, the report gets its rows,
 * and the in-test subset (`faults.test.ts`) runs it too.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAzurite } from '../harness/azurite.js';
import { startEtcd } from '../harness/etcd.js';
import { startPostgres } from '../harness/postgres.js';
import { killAndWait, spawnServer, waitUntil, WillNotHappen } from '../harness/process.js';
import { startRedis } from '../harness/redis.js';
import {
  CLUSTER_FAULTS,
  HOLDER_FAULTS,
  NETWORK_FAULTS,
  SINGLE_SERVER_FAULTS,
  type FaultKind,
} from './faults.js';
import { compile } from './compile.js';
import type { Links } from './links.js';

/** A server the injector can pause and restart. */
export interface ServerHandle {
  readonly name: string;
  /** Its process now (restarts replace it). */
  process(): ChildProcess;
  /** Start it again on the same port and data after it was killed; resolves once it serves. */
  restart(): Promise<void>;
}

/** How a worker process makes its backend. */
export interface WorkerBackend {
  /** Absolute path of a module exporting `createBackend()`. */
  readonly module: string;
  /** The environment that module reads. */
  readonly env: Readonly<Record<string, string>>;
}

/** Running servers for one run. */
export interface Deployment {
  /** The backend of worker `slot`, reaching every server through that slot's links. */
  backend(slot: number): Promise<WorkerBackend>;
  /** Every server, for server faults (empty: no server). */
  readonly servers: readonly ServerHandle[];
  /** The server that leads now (clusters). */
  leader?(): Promise<ServerHandle>;
  stop(): Promise<void>;
}

/** One backend's line. */
export interface BackendSetup {
  /** The lease TTL workers use. @default 1_000 */
  readonly ttlMs?: number;
  /** Liveness: after a holder is killed, the lock is taken again within `ttlMs` + this. @default 1_000 */
  readonly livenessMarginMs?: number;
  /** The fault kinds that apply. */
  readonly faults: readonly FaultKind[];
  /** Start the servers; `dir` is a scratch directory, `links` makes the fault proxies. */
  start(context: { readonly dir: string; readonly links: Links }): Promise<Deployment>;
}

/** A test fixture's absolute path (`test/fixtures/<name>`). */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

const here = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

/** What {@link singleServer} needs of a harness's server. */
export interface SingleServer {
  readonly port: number;
  readonly url: string;
  readonly process: ChildProcess;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The setup of a backend with one server: `start` starts it (in `dir`), `env(url)` is the
 * worker's environment for a URL that reaches it (through the worker's proxy).
 */
export function singleServer(options: {
  readonly start: (dir: string) => Promise<SingleServer>;
  readonly module: string;
  readonly env: (url: string) => Record<string, string>;
  readonly faults?: readonly FaultKind[];
  readonly ttlMs?: number;
  readonly livenessMarginMs?: number;
}): BackendSetup {
  return serverGroup({
    ...options,
    start: async (dir) => [await options.start(dir)],
    env: ([url]) => options.env(url!),
  });
}

/**
 * The setup of a backend with several independent servers (Redlock's nodes): `start` starts them
 * all, `env(urls)` is the worker's environment for URLs that reach them, in order. `server-pause`
 * and `server-restart` hit one of them (below quorum), `quorum-pause` a majority.
 */
export function serverGroup(options: {
  readonly start: (dir: string) => Promise<readonly SingleServer[]>;
  readonly module: string;
  readonly env: (urls: readonly string[]) => Record<string, string>;
  /** @default {@link SINGLE_SERVER_FAULTS}, and `quorum-pause` for several servers */
  readonly faults?: readonly FaultKind[];
  readonly ttlMs?: number;
  readonly livenessMarginMs?: number;
}): BackendSetup {
  return {
    ttlMs: options.ttlMs,
    livenessMarginMs: options.livenessMarginMs,
    faults: options.faults ?? SINGLE_SERVER_FAULTS,
    async start({ dir, links }) {
      const servers = await options.start(dir);
      const handles = servers.map((server, i): ServerHandle => ({
        name: servers.length === 1 ? 'server' : `node ${i + 1}`,
        process: () => server.process,
        restart: () => server.restart(),
      }));
      return {
        servers: handles,
        async backend(slot) {
          const urls = await Promise.all(
            servers.map(async (server) => {
              const port = await links.port(slot, server.port);
              return server.url.replace(`:${server.port}`, `:${port}`);
            }),
          );
          return { module: options.module, env: options.env(urls) };
        },
        stop: async () => {
          await Promise.all(servers.map((server) => server.stop()));
        },
      };
    },
  };
}

/**
 * A redis-server whose append-only file is synced on every write, in `dir`: a restart keeps locks
 * and fence counter (without persistence it forgets both: see the README's guarantees).
 */
export function redisWithAof(dir: string): Promise<SingleServer> {
  mkdirSync(dir, { recursive: true });
  return startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
}

/** The memory backend's lock server (`memory-server.ts`), on a free port. */
async function startMemoryServer(): Promise<SingleServer> {
  const spawnOne = async (port = 0) => {
    const script = await compile(here('memory-server.ts'));
    const child = spawnServer(process.execPath, [script, String(port)]);
    let found = 0;
    await waitUntil('the memory lock server', () => {
      if (child.exitCode !== null) throw new WillNotHappen(`it exited:\n${child.output()}`);
      found = Number(/listening (\d+)/.exec(child.output())?.[1] ?? 0);
      return found > 0;
    });
    return { child, port: found };
  };
  const first = await spawnOne();
  const port = first.port;
  let child = first.child;
  return {
    port,
    url: `127.0.0.1:${port}`,
    get process() {
      return child;
    },
    async restart() {
      await killAndWait(child);
      child = (await spawnOne(port)).child;
    },
    stop: () => killAndWait(child),
  };
}

/** A 3-member etcd cluster; every worker reaches each member through its own proxy. */
const etcdCluster: BackendSetup = {
  ttlMs: 2_000, // etcd leases have whole seconds, 2 s at least
  livenessMarginMs: 2_000, // a lease's expiry is noticed within about a second
  faults: CLUSTER_FAULTS,
  async start({ links }) {
    const cluster = await startEtcd(3);
    const handles = cluster.members.map((member): ServerHandle => ({
      name: member.name,
      process: () => member.process,
      restart: () => cluster.restart(member),
    }));
    return {
      servers: handles,
      async backend(slot) {
        const ports = await Promise.all(
          cluster.members.map((m) => links.port(slot, Number(m.endpoint.split(':')[1]))),
        );
        return {
          module: fixture('etcd-backend.ts'),
          env: {
            DISTLOCK_ETCD_URL: `etcd://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
            // The session is the holder's liveness: as long as the lease TTL.
            DISTLOCK_ETCD_SESSION_TTL_MS: '2000',
          },
        };
      },
      async leader() {
        const leader = await cluster.leader();
        return handles[cluster.members.indexOf(leader)]!;
      },
      stop: () => cluster.stop(),
    };
  },
};

/**
 * PostgreSQL in lease mode: one throw-away cluster. Its server is a family of processes (pg_ctl's
 * daemon and a process per connection), so the server-side faults here are the network's: a
 * partition is a black hole or a stall between a worker and the server. Crash-restarts of the
 * server are tested in `test/backends/postgres-faults.test.ts`.
 */
const postgresServer: BackendSetup = {
  faults: [...HOLDER_FAULTS, ...NETWORK_FAULTS],
  async start({ links }) {
    const server = await startPostgres();
    return {
      servers: [],
      async backend(slot) {
        const port = await links.port(slot, server.port);
        return {
          module: fixture('postgres-backend.ts'),
          env: { DISTLOCK_POSTGRES_URL: server.url.replace(`:${server.port}`, `:${port}`) },
        };
      },
      stop: () => server.stop(),
    };
  },
};

/**
 * The backends, one line each. Redis runs with an append-only file synced on every write, so that a
 * restart keeps locks and fence counter (without persistence a restart forgets both: see the
 * README's guarantees).
 */
export const SETUPS: Readonly<Record<string, BackendSetup>> = {
  memory: singleServer({
    start: startMemoryServer,
    module: here('remote-backend.ts'),
    env: (url) => ({ DISTLOCK_MEMORY_SERVER: url }),
    // A memory store keeps nothing across a restart, by design: no server-restart.
    faults: [...HOLDER_FAULTS, 'server-pause', ...NETWORK_FAULTS],
    livenessMarginMs: 1_500, // its workers poll (backoff up to 500 ms, jittered): no queue
  }),
  files: {
    faults: HOLDER_FAULTS,
    livenessMarginMs: 1_500, // waiters poll (backoff up to 500 ms, jittered) besides fs.watch
    async start({ dir }) {
      const locks = join(dir, 'locks');
      mkdirSync(locks, { mode: 0o700 });
      return {
        servers: [],
        backend: async () => ({
          module: fixture('files-backend.ts'),
          env: { DISTLOCK_TEST_FILES_DIR: locks },
        }),
        stop: async () => undefined,
      };
    },
  },
  redis: singleServer({
    start: redisWithAof,
    module: fixture('redis-backend.ts'),
    env: (url) => ({ DISTLOCK_REDIS_URL: url }),
  }),
  'redis-node-redis': singleServer({
    start: redisWithAof,
    module: fixture('redis-backend.ts'),
    env: (url) => ({ DISTLOCK_REDIS_URL: url, DISTLOCK_REDIS_CLIENT_LIBRARY: 'node-redis' }),
  }),
  etcd: etcdCluster,
  postgres: postgresServer,
  // Azure blob leases last 15 s at least. In memory: a restart forgets fences (no server-restart).
  'azure-blob': singleServer({
    start: () => startAzurite(),
    module: fixture('azure-blob-backend.ts'),
    env: (connectionString) => ({ DISTLOCK_AZURE_CONNECTION_STRING: connectionString }),
    ttlMs: 15_000,
    livenessMarginMs: 2_000,
    faults: [...HOLDER_FAULTS, 'server-pause', ...NETWORK_FAULTS],
  }),
  redlock: serverGroup({
    start: (dir) => Promise.all([1, 2, 3, 4, 5].map((i) => redisWithAof(join(dir, `node-${i}`)))),
    module: fixture('redlock-backend.ts'),
    env: (urls) => ({ DISTLOCK_REDLOCK_URLS: urls.join(',') }),
    faults: [...SINGLE_SERVER_FAULTS, 'quorum-pause'],
  }),
};
