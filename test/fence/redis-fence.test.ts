/** The Redis guard (`redisFence`) on a real redis-server, and its script reloaded after a flush. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisFence } from '../../src/fence/index.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { guardContract } from './guard-contract.js';

let redis: RedisServer;
let client: Redis;
let counter = 0;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

describe('redisFence', () => {
  guardContract(() => redisFence(client, `fenced:${(counter += 1)}`));

  it('keeps value and fences in one hash, and runs again after SCRIPT FLUSH', async () => {
    const guard = redisFence(client, 'fenced:hash');
    await guard.write('v', 3n);
    expect(await client.hgetall('fenced:hash')).toEqual({ value: 'v', fence: '3' });
    await client.script('FLUSH');
    await guard.write('w', { fence: 4n, mode: 'exclusive' });
    expect(await guard.read(4n)).toBe('w');
  });

  it('compares fences beyond 2^53 exactly', async () => {
    const guard = redisFence(client, 'fenced:big');
    const big = 2n ** 62n + 1n;
    await guard.write('big', big);
    await expect(guard.write('stale', big - 1n)).rejects.toMatchObject({ code: 'STALE_FENCE' });
    await guard.write('next', big + 1n);
  });

  it('refuses a client that is not one', () => {
    expect(() => redisFence({} as never, 'k')).toThrow(/client/);
  });
});
