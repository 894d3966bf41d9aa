/**
 * The part of a node-redis (`redis` v5) client the lock logic uses, described structurally: the
 * backend never imports `redis` itself (it is an optional peer), so a user's client is recognised
 * by its shape, and a client built from a URL comes from `redis`'s own `createClient`, loaded only
 * then.
 */
import { createRequire } from 'node:module';
import { InvalidArgumentError } from '../../../core/errors.js';

/** Per-command options of node-redis that the layer passes. */
export interface NodeRedisCommandOptions {
  /** Removes a command that is still waiting to be written (the client is not connected yet). */
  readonly abortSignal?: AbortSignal;
}

/** A node-redis `RedisClientType` as far as distlock uses it. */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  /** The client's options (read for its password, and to duplicate it with its socket). */
  readonly options?: object | undefined;
  sendCommand(args: readonly string[], options?: NodeRedisCommandOptions): Promise<unknown>;
  duplicate(overrides?: object): NodeRedisClient;
  connect(): Promise<unknown>;
  destroy(): void;
  close(): Promise<void>;
  ref(): void;
  unref(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * node-redis `createClient` options (`RedisClientOptions`), as far as distlock reads them; any
 * other option passes through unchanged.
 */
export interface NodeRedisClientOptions {
  readonly url?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly socket?: object | undefined;
}

/** True for a node-redis client (`createClient()`), told apart from ioredis by its shape. */
export function isNodeRedisClient(value: unknown): value is NodeRedisClient {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.sendCommand === 'function' &&
    typeof candidate.duplicate === 'function' &&
    typeof candidate.isOpen === 'boolean' &&
    typeof candidate.isReady === 'boolean' &&
    // ioredis has `status`; a node-redis cluster has `masters`.
    !('status' in candidate) &&
    !('masters' in candidate)
  );
}

/** True for a node-redis cluster (`createCluster()`): it routes by key, and has its masters. */
export function isNodeRedisCluster(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    'masters' in value &&
    typeof (value as { nodeClient?: unknown }).nodeClient === 'function'
  );
}

/** `redis`'s `createClient`, loaded on first use (the package is an optional peer dependency). */
export function loadCreateClient(): (options: object) => NodeRedisClient {
  const require = createRequire(import.meta.url);
  try {
    return (require('redis') as { createClient: (options: object) => NodeRedisClient })
      .createClient;
  } catch (error) {
    throw new InvalidArgumentError(
      'clientLibrary',
      'node-redis needs the "redis" package, which is not installed: npm i redis',
      { cause: error },
    );
  }
}
