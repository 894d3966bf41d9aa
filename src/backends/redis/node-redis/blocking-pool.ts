/**
 * Connections for `BLPOP` on node-redis, as `../ioredis/blocking-pool.ts` keeps them for ioredis:
 * each waiter queued at the same time needs its own (a blocked connection can do nothing else);
 * they are duplicated from the client on demand (same server, credentials, TLS), kept for reuse
 * when idle, capped at `maxBlockingConnections` (waiters beyond it poll), and closed with the
 * backend. They never reconnect: a broken one rejects its `BLPOP` and is thrown away.
 */
import type { BlockingConnection, LuaScript, PopOutcome } from '../connection.js';
import type { NodeRedisClient, NodeRedisClientOptions } from './client.js';
import type { NodeRedisScriptRunner } from './script-runner.js';
import type { OwnedClients } from './owned-clients.js';

/** Server-side `BLPOP` timeout: re-issued after this, so a silently dead socket is noticed. */
const BLPOP_TIMEOUT_S = '10';

const ignore = (): void => undefined;

function duplicateForBlocking(client: NodeRedisClient): NodeRedisClient {
  const connection = client.duplicate({
    // Same address and TLS; never reconnect (a broken one is replaced), and no socket timeout
    // shorter than a BLPOP.
    socket: {
      ...(client.options as NodeRedisClientOptions | undefined)?.socket,
      reconnectStrategy: false,
      socketTimeout: undefined,
    },
    disableOfflineQueue: false,
    pingInterval: undefined,
    // A BLPOP is meant to outlive any command timeout the user's client may set, and its replies
    // must stay strings whatever type mapping the user chose.
    commandOptions: undefined,
  });
  // An `error` event without a listener would be thrown; failures surface as rejected BLPOPs.
  connection.on('error', ignore);
  connection.connect().catch(ignore);
  return connection;
}

/** One pooled connection, as a waiter uses it. */
class PooledConnection implements BlockingConnection {
  constructor(
    readonly connection: NodeRedisClient,
    readonly runner: NodeRedisScriptRunner,
  ) {}

  runThenPop(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    list: string,
  ): { reply: Promise<unknown>; pop: Promise<PopOutcome> } | undefined {
    if (!this.connection.isReady) return undefined;
    // Issued in the same tick, so node-redis writes both at once.
    const reply = this.runner.run(script, keys, args, { via: this.connection });
    return { reply, pop: this.pop(list) };
  }

  pop(list: string): Promise<PopOutcome> {
    return this.connection.sendCommand(['BLPOP', list, BLPOP_TIMEOUT_S]).then(
      (value): PopOutcome => ({ kind: 'reply', value: value as [string, string] | null }),
      (): PopOutcome => ({ kind: 'error' }),
    );
  }
}

/** The pool of blocking connections of one backend. */
export class NodeRedisBlockingPool {
  readonly #client: NodeRedisClient;
  readonly #runner: NodeRedisScriptRunner;
  readonly #max: number;
  readonly #owned: OwnedClients;
  readonly #idle: PooledConnection[] = [];
  readonly #all = new Set<PooledConnection>();
  #closed = false;

  constructor(
    client: NodeRedisClient,
    runner: NodeRedisScriptRunner,
    max: number,
    owned: OwnedClients,
  ) {
    this.#client = client;
    this.#runner = runner;
    this.#max = max;
    this.#owned = owned;
  }

  /** A connection for one waiter, or undefined when the cap is reached (then poll instead). */
  take(): PooledConnection | undefined {
    if (this.#closed) return undefined;
    for (let pooled = this.#idle.pop(); pooled; pooled = this.#idle.pop()) {
      if (pooled.connection.isOpen) return pooled;
      this.#discard(pooled);
    }
    if (this.#all.size >= this.#max || !this.#client.isReady) return undefined;
    const connection = duplicateForBlocking(this.#client);
    this.#owned.own(connection);
    const pooled = new PooledConnection(connection, this.#runner);
    this.#all.add(pooled);
    return pooled;
  }

  give(pooled: BlockingConnection, healthy: boolean): void {
    const known = pooled as PooledConnection;
    if (!healthy || this.#closed) this.#discard(known);
    else this.#idle.push(known);
  }

  close(): void {
    this.#closed = true;
    for (const pooled of this.#all) this.#disconnect(pooled);
    this.#all.clear();
    this.#idle.length = 0;
  }

  #discard(pooled: PooledConnection): void {
    this.#all.delete(pooled);
    this.#disconnect(pooled);
  }

  #disconnect(pooled: PooledConnection): void {
    this.#owned.disown(pooled.connection);
    if (pooled.connection.isOpen) pooled.connection.destroy();
  }
}
