/**
 * A node-redis cluster (`createCluster()`) behind the one-server client shape the node-redis layer
 * drives ({@link NodeRedisClient}): every lock script names its keys, and all of them share one
 * hash tag, so a script is sent to the master of its first key's slot (node-redis follows `MOVED`
 * and `ASK` itself).
 *
 * A cluster's waiters poll: a `BLPOP` connection would have to be a client of the one master that
 * holds the waiter's list, opened and re-routed when slots move, which node-redis does not offer
 * for a cluster. Grants stay first come, first served: the queue is kept and handed over by the
 * scripts in Redis, a poll only notices the grant later than a `BLPOP` would.
 *
 * `WAIT` is not offered either: calls run on one connection per master, and `WAIT` on one of them
 * would say nothing about the others' writes.
 */
import calculateSlot from 'cluster-key-slot';
import type { NodeRedisClient, NodeRedisClientOptions, NodeRedisCommandOptions } from './client.js';

/** A cluster node's own client, as far as it is read here. */
interface NodeClient {
  readonly isReady: boolean;
  sendCommand(args: readonly string[], options?: NodeRedisCommandOptions): Promise<unknown>;
}

/** A master of the cluster (`cluster.masters[i]`, `cluster.slots[slot].master`). */
interface MasterNode {
  readonly host: string;
  readonly port: number;
  readonly client?: NodeClient | undefined;
}

/** A node-redis `RedisClusterType` as far as distlock uses it. */
export interface NodeRedisCluster {
  readonly isOpen: boolean;
  readonly masters: readonly MasterNode[];
  readonly slots: readonly { readonly master: MasterNode }[];
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: NodeRedisCommandOptions,
  ): Promise<unknown>;
  nodeClient(node: MasterNode): Promise<NodeClient>;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * A call refused because the master of its slot is disconnected: failed at once rather than left
 * in that node client's offline queue (where it would run after a reconnect, its caller gone).
 */
export class ClusterNodeOfflineError extends Error {}

/** The options of `createCluster` read for secrets (`rootNodes` and `defaults` hold them). */
interface ClusterOptions {
  readonly rootNodes?: readonly NodeRedisClientOptions[];
  readonly defaults?: NodeRedisClientOptions;
}

/** The first key of an `EVALSHA`/`EVAL` command line (`[cmd, sha, numkeys, key1, …]`). */
function firstKeyOf(args: readonly string[]): string | undefined {
  return Number(args[2]) > 0 ? args[3] : undefined;
}

/** The cluster as the node-redis layer's client: commands routed by their first key. */
export function clusterAsClient(cluster: NodeRedisCluster): NodeRedisClient {
  // Cluster events a one-server client would emit as `error`/`ready`: those of its node clients.
  const events: Record<string, readonly string[]> = {
    error: ['error', 'node-error'],
    ready: ['node-ready'],
  };
  const options = (cluster as unknown as { _options?: ClusterOptions })._options;
  return {
    get isOpen() {
      return cluster.isOpen;
    },
    // There is no one connection to be ready: a disconnected master is checked per call below.
    get isReady() {
      return cluster.isOpen;
    },
    // The root nodes' and defaults' options, where a password may be (read to scrub it).
    options: { ...options?.defaults, rootNodes: options?.rootNodes },
    sendCommand(args, commandOptions) {
      const key = firstKeyOf(args);
      const master = key === undefined ? undefined : cluster.slots[calculateSlot(key)]?.master;
      if (master?.client && !master.client.isReady) {
        return Promise.reject(
          new ClusterNodeOfflineError(
            `the master of the key's slot (${master.host}:${master.port}) is not connected`,
          ),
        );
      }
      // The command line is built afresh for each call (`script-runner.ts`): not shared.
      return cluster.sendCommand(key, false, args as string[], commandOptions);
    },
    duplicate() {
      throw new Error('a node-redis cluster has no blocking connections: its waiters poll');
    },
    connect: () => cluster.connect(),
    destroy: () => cluster.destroy(),
    close: () => cluster.close(),
    // The user's cluster: its sockets are theirs to ref or unref.
    ref: () => undefined,
    unref: () => undefined,
    on(event, listener) {
      for (const name of events[event] ?? [event]) cluster.on(name, listener);
      return this;
    },
    off(event, listener) {
      for (const name of events[event] ?? [event]) cluster.off(name, listener);
      return this;
    },
  };
}

/** Every key matching `pattern`, `SCAN`ned on each master in turn. */
export async function scanCluster(
  cluster: NodeRedisCluster,
  pattern: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const found: string[] = [];
  for (const master of cluster.masters) {
    const client = await cluster.nodeClient(master);
    let cursor = '0';
    do {
      signal?.throwIfAborted();
      if (!client.isReady) {
        throw new ClusterNodeOfflineError(`master ${master.host}:${master.port} is not connected`);
      }
      const reply = (await client.sendCommand([
        'SCAN',
        cursor,
        'MATCH',
        pattern,
        'COUNT',
        '500',
      ])) as [string, string[]];
      cursor = String(reply[0]);
      found.push(...reply[1]);
    } while (cursor !== '0');
  }
  return found;
}
