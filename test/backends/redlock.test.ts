/**
 * The Redlock backend against five real redis-server processes: the conformance suite, and its
 * options (node count, URLs, secrets).
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redlockBackend } from '../../src/backends/redlock/index.js';
import { InvalidArgumentError, UnsupportedError } from '../../src/core/errors.js';
import { createLocks } from '../../src/core/locks.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const fixture = fileURLToPath(new URL('../fixtures/redlock-backend.ts', import.meta.url));

let servers: RedisServer[] = [];
beforeAll(async () => {
  servers = await Promise.all([0, 1, 2, 3, 4].map(() => startRedis()));
  process.env.DISTLOCK_REDLOCK_URLS = servers.map((server) => server.url).join(',');
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

const urls = () => servers.map((server) => server.url);

runConformanceSuite({
  name: 'redlock',
  createBackend: () => redlockBackend({ urls: urls() }),
  processBackendModule: fixture,
  // Nothing listens on ports 1-3 of loopback: every connect is refused.
  createUnreachableBackend: () =>
    redlockBackend({ urls: ['redis://127.0.0.1:1', 'redis://127.0.0.1:2', 'redis://127.0.0.1:3'] }),
  // The servers have no such user: AUTH is refused on every node.
  createBackendWithSecret: () => {
    const secret = 'Secr3tPw-redlock';
    const withSecret = urls().map((url) => url.replace('redis://', `redis://nobody:${secret}@`));
    return { backend: redlockBackend({ urls: withSecret }), secret };
  },
});

describe('redlock backend options', () => {
  it('needs an odd number of at least 3 nodes, and exactly one of clients or urls', () => {
    const cases: [object, string][] = [
      [{ urls: ['redis://a:1'] }, 'urls'],
      [{ urls: ['redis://a:1', 'redis://b:1'] }, 'urls'],
      [{ urls: ['redis://a:1', 'redis://b:1', 'redis://c:1', 'redis://d:1'] }, 'urls'],
      [{ clients: [] }, 'clients'],
      [{}, 'clients'],
      [{ urls: ['redis://a:1', 'redis://b:1', 'redis://c:1'], clients: [] }, 'clients'],
      [{ urls: ['redis://a:1', 'redis://b:1', 'redis://c:1'], nodeTimeoutMs: 0 }, 'nodeTimeoutMs'],
      [{ urls: ['redis://a:1', 'redis://b:1', 'redis://c:1'], driftFactor: 0.7 }, 'driftFactor'],
      [{ urls: ['redis://a:1', 'redis://b:1', 'redis://c:1'], fencing: 'maybe' }, 'fencing'],
      [
        { urls: ['redis://a:1', 'redis://b:1', 'redis://c:1'], restartGuardMs: -1 },
        'restartGuardMs',
      ],
      [{ urls: ['redis://a:1', 'redis://b:1', 'redis://c:1'], prefix: 'x{' }, 'prefix'],
    ];
    for (const [options, option] of cases) {
      let caught: unknown;
      try {
        redlockBackend(options as never);
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).option).toBe(option);
    }
  });

  it('rejects a malformed node URL without echoing it', () => {
    let caught: unknown;
    try {
      redlockBackend({ urls: ['redis://a:1', 'http://u:s3cret@b:2', 'redis://c:3'] });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    expect(String((caught as Error).message)).not.toContain('s3cret');
  });

  it('works over clients passed in, and leaves them open on close', async () => {
    const clients = urls().map((url) => new Redis(url));
    const backend = redlockBackend({ clients });
    const locks = createLocks({ backend, ttlMs: 5_000 });
    const lease = await locks.acquire('redlock-options/clients');
    expect(lease.fence).toBeGreaterThan(0n);
    await lease.release();
    await locks.close();
    expect(await Promise.all(clients.map((client) => client.ping()))).toEqual(
      clients.map(() => 'PONG'),
    );
    await Promise.all(clients.map((client) => client.quit()));
  });

  it("fencing: 'none' reports no fencing and grants in one round trip", async () => {
    const backend = redlockBackend({ urls: urls(), fencing: 'none' });
    expect(backend.capabilities.fencing).toBe(false);
    const locks = createLocks({ backend, ttlMs: 5_000 });
    const lease = await locks.acquire('redlock-options/no-fence');
    expect(lease.fence).toBe(0n);
    expect((await locks.inspect('redlock-options/no-fence'))?.token).toBe(lease.token);
    await lease.release();
    await locks.close();
  });

  it('offers neither read-write locks nor semaphores', async () => {
    const locks = createLocks({ backend: redlockBackend({ urls: urls() }) });
    expect(() => locks.readWrite('k')).toThrow(UnsupportedError);
    expect(() => locks.semaphore('k', { limit: 2 })).toThrow(UnsupportedError);
    await locks.close();
  });
});
