/**
 * What the Redis lock logic (the backend, its queue, its scripts) needs from a Redis client
 * library, and nothing else: run a Lua script, block a waiter on a list, enumerate keys, and keep
 * the process alive only while there is work. The one implementation today is over ioredis
 * (`./ioredis/`); another client library slots in by implementing {@link RedisConnection}.
 *
 * Every failure an implementation reports is already a typed `LockError` (a retryable
 * `BackendUnavailableError` when the store could not be reached, with the root cause of that —
 * e.g. `connect ECONNREFUSED` — at the end of its `cause` chain, and no secret anywhere in it).
 */
import { createHash } from 'node:crypto';

/** A Lua script and its SHA1, the name `EVALSHA` knows it by. */
export interface LuaScript {
  /** The operation it implements, for error messages (`acquire`, `release`, …). */
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/** A script with its SHA1 computed once. */
export function luaScript(name: string, source: string): LuaScript {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Options of one script call. */
export interface RunOptions {
  readonly signal?: AbortSignal | undefined;
  /** Called with the result if the call succeeds after its caller gave up (timeout, abort). */
  readonly onLate?: (result: unknown) => void;
}

/**
 * How a waiter's `BLPOP` ended: a reply (an element, or null on its server-side timeout), or a
 * failure of its connection.
 */
export type PopOutcome =
  | { readonly kind: 'reply'; readonly value: readonly [string, string] | null }
  | { readonly kind: 'error' };

/** A connection one queued waiter blocks on (`BLPOP`); it can do nothing else meanwhile. */
export interface BlockingConnection {
  /**
   * Run `script` on this connection and then `BLPOP list`, sent together (one write), so the
   * waiter blocks at once. Undefined when the connection cannot do that now (not connected yet).
   */
  runThenPop(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    list: string,
  ): { readonly reply: Promise<unknown>; readonly pop: Promise<PopOutcome> } | undefined;
  /** `BLPOP list` with the layer's server-side timeout (re-issued by the caller after it). */
  pop(list: string): Promise<PopOutcome>;
}

/** A Redis client as the lock logic uses it. */
export interface RedisConnection {
  /**
   * Run `script` once (`EVALSHA`, falling back to `EVAL` after a script cache flush); resolves
   * with its raw reply. Fails fast while disconnected; bounded by the command timeout.
   */
  run(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    options?: RunOptions,
  ): Promise<unknown>;
  /** A connection for one waiter, or undefined when none can be spared (then it polls). */
  takeBlocking(): BlockingConnection | undefined;
  /** Hand a connection back once its `BLPOP` has settled; an unhealthy one is closed. */
  giveBlocking(connection: BlockingConnection, healthy: boolean): void;
  /** Every key matching the `SCAN MATCH` `pattern`, on every master. */
  scan(pattern: string, signal?: AbortSignal): Promise<string[]>;
  /**
   * Keep the process alive until the returned function is called (a queued wait in progress).
   * Otherwise the layer's own connections do not hold the process open while no call is in
   * flight, so a script that forgets `close()` still exits.
   */
  keepAlive(): () => void;
  /**
   * Optional (a layer without it gives no wake-ups; its users poll): call `onMessage` with each
   * message `PUBLISH`ed on `channel`, until the returned function is called. Best effort: a
   * message sent while the subscriber connection is down is missed. Resolves once subscribed.
   */
  subscribe?(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  /** Close the connections the layer opened (a client passed in by the user stays open). */
  close(): Promise<void>;
  /**
   * `WAIT replicas timeoutMs` on the connection `run` sends on: resolves with how many replicas
   * acknowledged every write that connection made so far (fewer than `replicas` once `timeoutMs`
   * passed). Optional: absent where calls run on many connections (a Cluster client).
   */
  waitForReplicas?(replicas: number, timeoutMs: number): Promise<number>;
}
