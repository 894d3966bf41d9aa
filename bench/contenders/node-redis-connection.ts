/**
 * node-redis (the `redis` package) connections for distlock's node-redis row: one client per
 * benchmark client, as the ioredis rows open one ioredis connection each.
 */
import { createClient } from 'redis';
import { redisBackend } from '../../src/backends/redis/index.js';
import type { BackendOpener } from './distlock.js';

/** An opener of distlock Redis backends over a fresh node-redis client each. */
export function nodeRedisOpener(port: number): BackendOpener {
  return async () => {
    const client = createClient({ socket: { host: '127.0.0.1', port } });
    // Failures surface through the failing command; an `error` event without a listener throws.
    client.on('error', () => undefined);
    await client.connect();
    return {
      backend: redisBackend({ client }),
      close: async () => {
        try {
          await client.close();
        } catch {
          if (client.isOpen) client.destroy();
        }
      },
    };
  };
}
