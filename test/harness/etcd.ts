/**
 * Spawns real `etcd` servers (Debian's etcd-server) on free loopback ports with temporary data
 * directories: a single member for the conformance suite, a 3-member cluster for fault tests.
 */
import { execFile, type ChildProcess } from 'node:child_process';
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

/** One etcd member (its process is replaced when it is restarted). */
export interface EtcdMember {
  readonly name: string;
  /** Its `--name`, unique to this cluster: how its answers are told from another etcd's. */
  readonly uniqueName: string;
  /** `127.0.0.1:port` of its client endpoint. */
  readonly endpoint: string;
  process: ChildProcess & { output: () => string };
  /** The command line, to restart it on the same data directory. */
  readonly args: readonly string[];
}

/** A running single member or cluster; `stop()` kills every member and removes the data. */
export interface EtcdServer {
  readonly members: readonly EtcdMember[];
  /** Client endpoints, `host:port`, of every member started (dead ones included). */
  readonly endpoints: readonly string[];
  /** `etcd://host:port,host:port` for `etcdBackend({ url })`. */
  readonly url: string;
  /** The member that is the raft leader now, found with `etcdctl endpoint status`. */
  leader(): Promise<EtcdMember>;
  /** Wait until every member still alive answers `endpoint health`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Start a killed member again on its data directory (it rejoins the cluster). */
  restart(member: EtcdMember): Promise<void>;
  stop(): Promise<void>;
}

function ensureEtcd(): void {
  requireCommand('etcd', 'etcd');
  requireCommand('etcd', 'etcdctl');
}

async function etcdctl(endpoints: readonly string[], args: string[]): Promise<string> {
  const { stdout } = await run(
    'etcdctl',
    [`--endpoints=${endpoints.join(',')}`, '--command-timeout=2s', '--dial-timeout=1s', ...args],
    { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 5_000 },
  );
  return stdout;
}

function alive(member: EtcdMember): boolean {
  return member.process.exitCode === null && member.process.signalCode === null;
}

/**
 * Start `size` etcd members (1 or 3) forming one cluster, and wait until all are healthy.
 *
 * @example
 * ```ts
 * const etcd = await startEtcd(3);
 * const leader = await etcd.leader();
 * await killAndWait(leader.process);
 * await etcd.stop();
 * ```
 */
export async function startEtcd(size: 1 | 3 = 1): Promise<EtcdServer> {
  ensureEtcd();
  return startOnFreePorts(() => startEtcdOnce(size));
}

async function startEtcdOnce(size: 1 | 3): Promise<EtcdServer> {
  const dir = tempDir('distlock-etcd-');
  const ports: Array<{ name: string; client: number; peer: number }> = [];
  for (let i = 1; i <= size; i += 1) {
    ports.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  }
  // One token for the whole cluster (members derive the cluster ID from it), unique per cluster.
  const clusterToken = `distlock-${process.pid}-${ports[0]!.peer}`;
  const uniqueName = (name: string) => `${name}-${clusterToken}`;
  const initialCluster = ports
    .map((p) => `${uniqueName(p.name)}=http://127.0.0.1:${p.peer}`)
    .join(',');
  const members: EtcdMember[] = ports.map((p) => {
    const clientUrl = `http://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    const args = [
      '--name',
      uniqueName(p.name),
      '--data-dir',
      join(dir.path, p.name),
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      clusterToken,
      '--logger',
      'zap',
      '--log-level',
      'warn',
    ];
    return {
      name: p.name,
      uniqueName: uniqueName(p.name),
      endpoint: `127.0.0.1:${p.client}`,
      process: spawnServer('etcd', args),
      args,
    };
  });
  const endpoints = members.map((m) => m.endpoint);

  const server: EtcdServer = {
    members,
    endpoints,
    url: `etcd://${endpoints.join(',')}`,
    async leader() {
      let found: EtcdMember | undefined;
      await waitUntil(
        'an etcd leader',
        async () => {
          const live = members.filter(alive);
          // Table rows: endpoint, ID, version, db size, is leader, ... (IDs exceed 2^53: no JSON).
          const table = await etcdctl(
            live.map((m) => m.endpoint),
            ['endpoint', 'status'],
          ).catch((error: { stdout?: string }) => error.stdout ?? '');
          for (const line of table.split('\n')) {
            const fields = line.split(', ');
            if (fields[4] === 'true') found = live.find((m) => m.endpoint === fields[0]);
          }
          return found !== undefined;
        },
        15_000,
        100,
      );
      return found!;
    },
    async waitHealthy(timeoutMs = 20_000) {
      for (const member of members.filter(alive)) {
        await waitUntil(
          `etcd ${member.name} at ${member.endpoint} to be healthy`,
          async () => {
            if (!alive(member)) {
              throw new WillNotHappen(`etcd ${member.name} exited:\n${member.process.output()}`);
            }
            await etcdctl([member.endpoint], ['endpoint', 'health']);
            // Healthy, but ours? If its port was taken, another test's etcd may answer there
            // while this member is still exiting.
            const list = await etcdctl([member.endpoint], ['member', 'list']);
            if (!list.includes(`, ${member.uniqueName}, `)) {
              throw new Error(
                `${member.endpoint} is another etcd's (or ours has not published its name yet)`,
              );
            }
            return true;
          },
          timeoutMs,
          100,
        );
      }
    },
    async restart(member) {
      await killAndWait(member.process);
      member.process = spawnServer('etcd', [...member.args]);
      await server.waitHealthy();
    },
    async stop() {
      await Promise.all(members.map((m) => killAndWait(m.process)));
      dir.remove();
    },
  };

  try {
    await server.waitHealthy();
    // waitHealthy passes over members that are down (a test may have killed them); at start none
    // may be: one that exited at once (its port taken meanwhile) would leave the URL naming
    // whatever else listens there. Throwing here retries on fresh ports.
    const exited = members.filter((member) => !alive(member));
    if (exited.length > 0) {
      throw new Error(`etcd ${exited.map((m) => m.name).join(', ')} exited at start`);
    }
  } catch (error) {
    const logs = members.map((m) => `--- ${m.name}:\n${m.process.output()}`).join('\n');
    await server.stop();
    throw new Error(`etcd did not start:\n${logs}`, { cause: error });
  }
  return server;
}
