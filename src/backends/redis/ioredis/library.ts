/**
 * ioredis itself, loaded on first use rather than imported: it is an optional peer dependency, and
 * a user of node-redis alone must be able to import `distlock/redis` without it.
 */
import { createRequire } from 'node:module';
import type * as Ioredis from 'ioredis';
import { InvalidArgumentError } from '../../../core/errors.js';

let loaded: typeof Ioredis | undefined;

/**
 * The `ioredis` module.
 * @throws InvalidArgumentError (option `clientLibrary`) when it is not installed; its `cause` is
 *   the resolver's `MODULE_NOT_FOUND` error.
 */
export function ioredis(): typeof Ioredis {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('ioredis') as typeof Ioredis;
  } catch (error) {
    throw new InvalidArgumentError(
      'clientLibrary',
      'ioredis is not installed: npm i ioredis (or pass a node-redis client)',
      { cause: error },
    );
  }
  return loaded;
}
