/**
 * The shared state that B2's critical sections update with a non-atomic read-modify-write
 * (GET, then SET of the value + 1). Any overlap of two holders loses an increment, so the final
 * value equals the number of critical sections only if the lock excluded everyone.
 */
import type { Etcd3 } from 'etcd3';
import type { Redis } from 'ioredis';
import { connectEtcd } from '../contenders/etcd-connection.js';
import { closeRedis, connectRedis } from '../contenders/redis-connection.js';

/** One client's handle on the counter (its own connection, separate from the lock's). */
export interface CounterClient {
  get(): Promise<number>;
  set(value: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens counter clients on one counter key. */
export type CounterFactory = (key: string) => Promise<CounterClient>;

/** A counter in Redis: GET + SET on its own ioredis connection. */
export function redisCounter(port: number): CounterFactory {
  return async (key) => {
    const redis: Redis = await connectRedis(port);
    return {
      get: async () => Number((await redis.get(key)) ?? 0),
      set: async (value) => {
        await redis.set(key, String(value));
      },
      close: () => closeRedis(redis),
    };
  };
}

/** A counter in etcd: get + put on its own etcd3 client. */
export function etcdCounter(port: number): CounterFactory {
  return async (key) => {
    const etcd: Etcd3 = await connectEtcd(port);
    return {
      get: async () => Number((await etcd.get(key).string()) ?? 0),
      set: async (value) => {
        await etcd.put(key).value(String(value));
      },
      close: async () => etcd.close(),
    };
  };
}
