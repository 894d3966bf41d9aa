/**
 * Options of the Redlock backend: defaults in one frozen object, validated eagerly (bad input is
 * an `InvalidArgumentError` naming the option, never a hang).
 */
import type { Redis, RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '../../core/errors.js';

/** Options of {@link redlockBackend}: pass exactly one of `clients` or `urls`. */
export interface RedlockBackendOptions {
  /**
   * One ioredis `Redis` client per independent Redis master (an odd number, at least 3). They
   * stay open when the backend closes. Not a `Cluster`, not replicas of one another: Redlock's
   * safety comes from the nodes failing independently.
   */
  readonly clients?: readonly Redis[];
  /**
   * One `redis://` or `rediss://` URL per independent Redis master (an odd number, at least 3);
   * the backend builds a client for each and quits them on `close()`.
   */
  readonly urls?: readonly string[];
  /** Extra ioredis options for the clients built from `urls`. @default none */
  readonly redisOptions?: RedisOptions;
  /**
   * Prepended to every Redis key (`<prefix>{<lock key>}` per lock, `<prefix>fence` per node).
   * It may not contain `{` or `}`.
   * @default 'distlock:'
   */
  readonly prefix?: string;
  /**
   * The longest one node may take to answer one call of an acquire, extend or release before it
   * counts as a failed vote (an attempt that misses its quorum only for slow nodes is not
   * granted and tried again; one that misses it for nodes it cannot reach at all fails with
   * `BackendUnavailableError`). Keep it far below the TTL: a stalled node costs at most this much.
   * It starts once the node is connected (a first connect is bounded by ioredis's own timeout).
   * The timeout of a call is `min(nodeTimeoutMs, max(1, floor(ttlMs / 10)))`, so that a short
   * TTL is never spent waiting on one node.
   * @default 100
   */
  readonly nodeTimeoutMs?: number;
  /**
   * Clock drift allowance of the validity check: a lease is granted only if
   * `ttlMs - elapsed - (floor(ttlMs * driftFactor) + 2) > 0`. Use the lock manager's value.
   * @default 0.01
   */
  readonly driftFactor?: number;
  /**
   * `'quorum'`: after the lock is won, read the fence counters of a majority, take the highest
   * plus one, write it back to a majority, and only then grant (two more parallel round trips);
   * fences strictly increase under the drift bound Redlock assumes (see the README).
   * `'none'`: one round trip; `capabilities.fencing` is false and every lease's fence is `0n`.
   * @default 'quorum'
   */
  readonly fencing?: 'quorum' | 'none';
  /**
   * A node that started less than this long ago (by its own uptime, whole seconds) does not vote:
   * after a restart without persistence it has forgotten the locks it
   * granted, and could otherwise give a held lock a second majority. Set it to your longest TTL
   * if your nodes run without persistence (`appendfsync always` makes it unnecessary). It also
   * applies to a node started for the first time: a fresh deployment waits that long.
   * @default 0 (off)
   */
  readonly restartGuardMs?: number;
}

/** Every default of {@link RedlockBackendOptions}. */
export const REDLOCK_DEFAULTS = Object.freeze({
  prefix: 'distlock:',
  nodeTimeoutMs: 100,
  driftFactor: 0.01,
  fencing: 'quorum' as const,
  restartGuardMs: 0,
  /** Bound of any one call in the client layer (the per-node timeout is much shorter). */
  commandTimeoutMs: 2_000,
});

/** Validated options: every field present. */
export interface ResolvedRedlockOptions {
  readonly prefix: string;
  readonly nodeTimeoutMs: number;
  readonly driftFactor: number;
  readonly fencing: 'quorum' | 'none';
  /** In whole seconds, rounded up (what the scripts compare the uptime with). */
  readonly restartGuardSeconds: number;
}

function integerAtLeast(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 2 ** 31) {
    throw new InvalidArgumentError(option, `must be an integer in [${min}, 2^31]`);
  }
  return value;
}

/** The number of nodes: odd and at least 3, from whichever of `clients` and `urls` is given. */
export function nodeCount(options: RedlockBackendOptions): number {
  if ((options.clients === undefined) === (options.urls === undefined)) {
    throw new InvalidArgumentError('clients', 'pass exactly one of `clients` or `urls`');
  }
  const option = options.clients === undefined ? 'urls' : 'clients';
  const nodes = options.clients ?? options.urls;
  if (!Array.isArray(nodes)) throw new InvalidArgumentError(option, 'must be an array');
  if (nodes.length < 3 || nodes.length % 2 === 0) {
    throw new InvalidArgumentError(
      option,
      `must list an odd number of at least 3 independent Redis nodes, got ${nodes.length}`,
    );
  }
  return nodes.length;
}

export function resolveOptions(options: RedlockBackendOptions): ResolvedRedlockOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object with `clients` or `urls`');
  }
  nodeCount(options);
  const prefix = options.prefix ?? REDLOCK_DEFAULTS.prefix;
  if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
  if (/[{}]/.test(prefix)) {
    throw new InvalidArgumentError('prefix', 'must not contain "{" or "}"');
  }
  const nodeTimeoutMs = integerAtLeast(
    'nodeTimeoutMs',
    options.nodeTimeoutMs ?? REDLOCK_DEFAULTS.nodeTimeoutMs,
    1,
  );
  const driftFactor = options.driftFactor ?? REDLOCK_DEFAULTS.driftFactor;
  if (typeof driftFactor !== 'number' || !(driftFactor >= 0 && driftFactor < 0.5)) {
    throw new InvalidArgumentError('driftFactor', 'must be a number in [0, 0.5)');
  }
  const fencing = options.fencing ?? REDLOCK_DEFAULTS.fencing;
  if (fencing !== 'quorum' && fencing !== 'none') {
    throw new InvalidArgumentError('fencing', "must be 'quorum' or 'none'");
  }
  const restartGuardMs = integerAtLeast(
    'restartGuardMs',
    options.restartGuardMs ?? REDLOCK_DEFAULTS.restartGuardMs,
    0,
  );
  return {
    prefix,
    nodeTimeoutMs,
    driftFactor,
    fencing,
    restartGuardSeconds: Math.ceil(restartGuardMs / 1000),
  };
}

/** The per-node timeout of one call for a lease of `ttlMs`. */
export function callTimeoutMs(options: ResolvedRedlockOptions, ttlMs: number): number {
  return Math.min(options.nodeTimeoutMs, Math.max(1, Math.floor(ttlMs / 10)));
}
