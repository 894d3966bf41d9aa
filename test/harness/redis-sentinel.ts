/**
 * A Redis Sentinel deployment on free loopback ports: one master, one replica and three Sentinels
 * (quorum 2, so a failover is a real decision of a majority), all Debian's `redis-server` (it runs
 * Sentinel itself with `--sentinel`). Sentinel rewrites its config file, so each gets its own copy.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  freePort,
  killAndWait,
  spawnServer,
  startOnFreePorts,
  tempDir,
  waitUntil,
} from './process.js';
import { ensureRedis, redisCli, waitForPing } from './redis.js';

/** The master's name the Sentinels monitor. */
export const SENTINEL_MASTER_NAME = 'mymaster';

/** A running master + replica + three Sentinels. */
export interface RedisSentinelDeployment {
  /** `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/mymaster` */
  readonly url: string;
  readonly sentinelPorts: readonly number[];
  /** The data servers by port (the master first, as started). */
  readonly servers: ReadonlyMap<number, ChildProcess>;
  /** The port of the master the Sentinels name now. */
  masterPort(): Promise<number>;
  /** The port of the master the Sentinels name, once it differs from `port` (a failover). */
  waitForFailover(port: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** Start the deployment and wait until every Sentinel knows the replica and the other two. */
export async function startRedisSentinel(): Promise<RedisSentinelDeployment> {
  ensureRedis();
  return startOnFreePorts(startOnce);
}

function dataServer(port: number, dir: string, args: string[] = []) {
  return spawnServer('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    ...args,
  ]);
}

async function startOnce(): Promise<RedisSentinelDeployment> {
  const dir = tempDir('distlock-redis-sentinel-');
  const children: ChildProcess[] = [];
  const servers = new Map<number, ChildProcess>();
  const sentinelPorts: number[] = [];
  const stop = async () => {
    await Promise.all(children.map((child) => killAndWait(child)));
    dir.remove();
  };
  try {
    const masterPort = await freePort();
    const master = dataServer(masterPort, dir.path);
    children.push(master);
    servers.set(masterPort, master);
    await waitForPing(masterPort, master);
    let replicaPort = await freePort();
    while (replicaPort === masterPort) replicaPort = await freePort();
    const replica = dataServer(replicaPort, dir.path, [
      '--replicaof',
      '127.0.0.1',
      String(masterPort),
      '--dbfilename',
      'replica.rdb',
    ]);
    children.push(replica);
    servers.set(replicaPort, replica);
    await waitForPing(replicaPort, replica);
    await waitUntil(
      'the replica in sync',
      async () =>
        (await redisCli(replicaPort, ['info', 'replication'])).includes('master_link_status:up'),
      15_000,
      50,
    );
    for (let i = 0; i < 3; i += 1) {
      let port = await freePort();
      while (port === masterPort || port === replicaPort || sentinelPorts.includes(port)) {
        port = await freePort();
      }
      const config = join(dir.path, `sentinel-${port}.conf`);
      writeFileSync(
        config,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 1000`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 3000`,
          '',
        ].join('\n'),
      );
      const sentinel = spawnServer('redis-server', [config, '--sentinel', '--dir', dir.path]);
      children.push(sentinel);
      sentinelPorts.push(port);
    }
    for (const port of sentinelPorts) {
      await waitUntil(
        `sentinel ${port} knows the replica and the other sentinels`,
        async () => {
          const master = await redisCli(port, ['sentinel', 'master', SENTINEL_MASTER_NAME]);
          const fields = master.split('\n');
          const value = (name: string) => Number(fields[fields.indexOf(name) + 1]);
          return value('num-slaves') >= 1 && value('num-other-sentinels') >= 2;
        },
        20_000,
        100,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const masterPort = async () => {
    for (const port of sentinelPorts) {
      try {
        const reply = await redisCli(port, [
          'sentinel',
          'get-master-addr-by-name',
          SENTINEL_MASTER_NAME,
        ]);
        const found = Number(reply.trim().split('\n')[1]);
        if (Number.isInteger(found) && found > 0) return found;
      } catch {
        // Ask the next one.
      }
    }
    throw new Error('no sentinel names a master');
  };
  return {
    url: `redis+sentinel://${sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',')}/${SENTINEL_MASTER_NAME}`,
    sentinelPorts,
    servers,
    masterPort,
    async waitForFailover(port, timeoutMs = 20_000) {
      let promoted = port;
      await waitUntil(
        'a failover',
        async () => {
          promoted = await masterPort();
          if (promoted === port) return false;
          // Promoted, and answering as a master.
          const role = await redisCli(promoted, ['role']).catch(() => '');
          return role.startsWith('master');
        },
        timeoutMs,
        100,
      );
      return promoted;
    },
    stop,
  };
}
