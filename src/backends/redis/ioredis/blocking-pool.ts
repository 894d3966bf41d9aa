/**
 * Connections for `BLPOP`. A blocked connection can do nothing else, so each waiter that is
 * queued at the same time needs its own; they are duplicated from the user's client on demand,
 * kept for reuse when idle, capped at `maxBlockingConnections` (waiters beyond the cap fall back
 * to jittered polling), and closed with the backend. They never reconnect or retry by themselves:
 * a broken one rejects its `BLPOP` and is thrown away.
 */
import type { Cluster, Redis } from 'ioredis';
import type { BlockingConnection, LuaScript, PopOutcome } from '../connection.js';
import type { RedisClient, ScriptRunner } from './script-runner.js';
import { ioredis } from './library.js';
import type { SocketRefs } from './socket-refs.js';

/** Server-side `BLPOP` timeout: re-issued after this, so a silently dead socket is noticed. */
const BLPOP_TIMEOUT_S = 10;

function duplicateForBlocking(client: RedisClient): RedisClient {
  const connection: RedisClient = client.isCluster
    ? (client as Cluster).duplicate([], {
        enableOfflineQueue: true,
        clusterRetryStrategy: () => null,
        redisOptions: {
          ...(client as Cluster).options.redisOptions,
          maxRetriesPerRequest: 0,
          autoResendUnfulfilledCommands: false,
          commandTimeout: undefined,
        },
      })
    : (client as Redis).duplicate({
        lazyConnect: false,
        enableOfflineQueue: true,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        enableAutoPipelining: false,
        // A BLPOP is meant to outlive any command timeout the user's client may set.
        commandTimeout: undefined,
        retryStrategy: () => null,
      });
  // Failures surface as rejected BLPOPs; without a listener ioredis would log every error.
  connection.on('error', () => undefined);
  return connection;
}

/**
 * Send one command on a standalone connection as a bare `Command`: a waiter's hot path, without
 * ioredis's per-method wrapper (argument flattening, callback support).
 */
function send(connection: Redis, name: string, args: (string | number)[]): Promise<unknown> {
  const command = new (ioredis().Command)(name, args, {
    keyPrefix: connection.options.keyPrefix,
    replyEncoding: 'utf8',
  });
  void connection.sendCommand(command);
  return command.promise;
}

/** One pooled connection, as a waiter uses it. */
class PooledConnection implements BlockingConnection {
  constructor(
    readonly connection: RedisClient,
    readonly runner: ScriptRunner,
  ) {}

  runThenPop(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    list: string,
  ): { reply: Promise<unknown>; pop: Promise<PopOutcome> } | undefined {
    const connection = this.connection;
    const socket = connection.isCluster ? undefined : (connection as Redis).stream;
    if (!socket || connection.status !== 'ready') return undefined;
    socket.cork();
    try {
      // Through the runner, whose one sweeping interval bounds the wait for the answer.
      const reply = this.runner.run(script, keys, args, { via: connection as Redis });
      return { reply, pop: this.pop(list) };
    } finally {
      socket.uncork();
    }
  }

  pop(list: string): Promise<PopOutcome> {
    const connection = this.connection;
    const popped = connection.isCluster
      ? connection.blpop(list, BLPOP_TIMEOUT_S)
      : (send(connection as Redis, 'blpop', [list, BLPOP_TIMEOUT_S]) as Promise<
          [string, string] | null
        >);
    return popped.then(
      (value): PopOutcome => ({ kind: 'reply', value }),
      (): PopOutcome => ({ kind: 'error' }),
    );
  }
}

/** The pool of blocking connections of one backend (see the module doc). */
export class BlockingPool {
  readonly #client: RedisClient;
  readonly #runner: ScriptRunner;
  readonly #max: number;
  readonly #refs: SocketRefs;
  readonly #idle: PooledConnection[] = [];
  readonly #all = new Set<PooledConnection>();
  #closed = false;

  constructor(client: RedisClient, runner: ScriptRunner, max: number, refs: SocketRefs) {
    this.#client = client;
    this.#runner = runner;
    this.#max = max;
    this.#refs = refs;
  }

  /** A connection for one waiter, or undefined when the cap is reached (then poll instead). */
  take(): PooledConnection | undefined {
    if (this.#closed) return undefined;
    for (let pooled = this.#idle.pop(); pooled; pooled = this.#idle.pop()) {
      const status = pooled.connection.status;
      if (status !== 'end' && status !== 'close') return pooled;
      this.#discard(pooled);
    }
    if (this.#all.size >= this.#max) return undefined;
    const connection = duplicateForBlocking(this.#client);
    // A cluster's connections are the user's client's business: it holds the process open anyway.
    if (!connection.isCluster) this.#refs.own(connection as Redis);
    const pooled = new PooledConnection(connection, this.#runner);
    this.#all.add(pooled);
    return pooled;
  }

  /** Hand a connection back once its `BLPOP` has settled; a broken one is closed. */
  give(pooled: BlockingConnection, healthy: boolean): void {
    const known = pooled as PooledConnection;
    if (!healthy || this.#closed) this.#discard(known);
    else this.#idle.push(known);
  }

  /** Close every connection, idle or blocked. */
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
    if (!pooled.connection.isCluster) this.#refs.disown(pooled.connection as Redis);
    pooled.connection.disconnect();
  }
}
