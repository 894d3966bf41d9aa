/**
 * Runs the lock scripts: one `EVALSHA` per operation (one round trip), falling back to `EVAL`
 * when the server answers `NOSCRIPT` (after a restart, a failover or `SCRIPT FLUSH`), which also
 * caches the script again. Works the same on a `Redis` and a `Cluster` client: both route the
 * call by the slot of its first key. Every call fails fast with a typed error when the client is
 * not connected, is bounded by a timeout, and honours an `AbortSignal`.
 */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { BackendUnavailableError } from '../../core/errors.js';
import { toLockError } from './errors.js';

/** A user's or our own ioredis client. */
export type RedisClient = Redis | Cluster;

/** A Lua script and its SHA1, the name `EVALSHA` knows it by. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

export function luaScript(name: string, source: string): LuaScript {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Connection states in which a command would only wait in ioredis's queues, or fail later. */
const DOWN_STATES = new Set(['close', 'reconnecting', 'disconnecting', 'end']);

export interface RunOptions {
  readonly signal?: AbortSignal | undefined;
  /** Called with the result if the call succeeds after its caller gave up (timeout, abort). */
  readonly onLate?: (result: unknown) => void;
}

export class ScriptRunner {
  readonly #client: RedisClient;
  readonly #timeoutMs: number;
  readonly #secret: string | undefined;

  constructor(client: RedisClient, timeoutMs: number, secret: string | undefined) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#secret = secret;
  }

  /** Run `script` once; resolves with its raw reply. */
  run(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    options: RunOptions = {},
  ): Promise<unknown> {
    const { signal, onLate } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const status = this.#client.status;
    if (DOWN_STATES.has(status)) {
      return Promise.reject(
        new BackendUnavailableError(`redis ${script.name} failed: connection is ${status}`),
      );
    }
    const call = this.#evaluate(script, keys, args);
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        finish();
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        if (settled) return;
        finish();
        reject(
          new BackendUnavailableError(
            `redis ${script.name} failed: no answer within ${this.#timeoutMs} ms`,
          ),
        );
      }, this.#timeoutMs);
      timer.unref?.();
      signal?.addEventListener('abort', onAbort, { once: true });
      call.then(
        (result) => {
          if (settled) {
            onLate?.(result);
            return;
          }
          finish();
          resolve(result);
        },
        (error: unknown) => {
          if (settled) return;
          finish();
          reject(toLockError(error, script.name, this.#secret));
        },
      );
    });
  }

  async #evaluate(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await this.#client.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return await this.#client.eval(script.source, keys.length, ...keys, ...args);
    }
  }
}
