/**
 * The Redis backend over node-redis (the `redis` package) against a real redis-server: the whole
 * conformance suite on a client the backend builds from a URL (`clientLibrary: 'node-redis'`), a
 * client the user passes in (told apart from ioredis by its shape), and the faults the ioredis
 * layer is tested with: the server killed, paused (SIGSTOP), restarted, connections killed.
 */
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend, redisBackend } from '../../src/backends/redis/index.js';
import { lockKeys } from '../../src/backends/redis/keys.js';
import {
  BackendError,
  BackendUnavailableError,
  InvalidArgumentError,
  LockError,
  LockLostError,
  LockTimeoutError,
} from '../../src/core/errors.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { rootCause } from '../../src/core/redact.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { startBlackHole } from '../harness/black-hole.js';
import { runToEnd, waitUntil } from '../harness/process.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const fixture = fileURLToPath(new URL('../fixtures/redis-backend.ts', import.meta.url));
const HIDE_PACKAGES = fileURLToPath(new URL('../fixtures/hide-packages.mjs', import.meta.url));

let conformanceServer: RedisServer;
beforeAll(async () => {
  conformanceServer = await startRedis();
  // Read by the fixture in the suite's child processes.
  process.env.DISTLOCK_REDIS_URL = conformanceServer.url;
  process.env.DISTLOCK_REDIS_CLIENT_LIBRARY = 'node-redis';
});
afterAll(async () => {
  await conformanceServer?.stop();
});

runConformanceSuite({
  name: 'redis (node-redis)',
  createBackend: () => redisBackend({ url: conformanceServer.url, clientLibrary: 'node-redis' }),
  processBackendModule: fixture,
  // Nothing listens on port 1 of loopback: every connect is refused.
  createUnreachableBackend: () =>
    redisBackend({ url: 'redis://127.0.0.1:1', clientLibrary: 'node-redis' }),
  // The server has no such user: AUTH is refused.
  createBackendWithSecret: () => {
    const secret = 'Secr3tPw-node-redis';
    const { port } = new URL(conformanceServer.url);
    return {
      backend: redisBackend({
        url: `redis://nobody:${secret}@127.0.0.1:${port}`,
        clientLibrary: 'node-redis',
      }),
      secret,
    };
  },
});

let keyCounter = 0;
const freshKey = (label: string) => `node-redis-test/${label}-${(keyCounter += 1)}`;

/** Rejection (or `undefined` on success) and how long the call took. */
async function outcome(call: () => Promise<unknown>): Promise<{ error: unknown; tookMs: number }> {
  const started = performance.now();
  try {
    await call();
    return { error: undefined, tookMs: performance.now() - started };
  } catch (error) {
    return { error, tookMs: performance.now() - started };
  }
}

async function waitersOf(locks: LockManager, key: string, count: number): Promise<void> {
  await waitUntil(
    `${count} waiters on ${key}`,
    async () => (await locks.inspect(key))?.waiters === count,
    10_000,
    10,
  );
}

describe('redis over node-redis: a client passed in', () => {
  it('is recognised by its shape, used, and left open by close()', async () => {
    const client = createClient({ url: conformanceServer.url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const backend = redisBackend({ client });
      expect(backend.client).toBe(client);
      const locks = createLocks({ backend, ttlMs: 5_000 });
      const key = freshKey('passed-client');
      const lease = await locks.acquire(key);
      expect(lease.fence).toBeGreaterThan(0n);
      const waiter = locks.acquire(key, { waitMs: 5_000 });
      await waitersOf(locks, key, 1);
      expect(await lease.release()).toBe('released');
      const next = await waiter;
      expect(next.fence).toBeGreaterThan(lease.fence);
      await next.release();
      await locks.close();
      expect(client.isOpen).toBe(true);
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.destroy();
    }
  });

  it('a client that is not connected fails calls typed, at once', async () => {
    const client = createClient({ url: conformanceServer.url });
    const backend = redisBackend({ client });
    const { error, tookMs } = await outcome(() =>
      backend.tryAcquire({ key: freshKey('closed'), token: 't', ttlMs: 1_000 }),
    );
    expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
    expect(tookMs).toBeLessThan(500);
    await backend.close();
  });

  it('refuses a cluster URL for node-redis (ioredis builds clusters from URLs), naming the option', () => {
    expect(() =>
      redisBackend({ url: 'redis+cluster://127.0.0.1:1,127.0.0.1:2', clientLibrary: 'node-redis' }),
    ).toThrow(InvalidArgumentError);
  });

  it('works without ioredis installed (it is loaded only for an ioredis client)', async () => {
    const backendModule = fileURLToPath(
      new URL('../../src/backends/redis/index.ts', import.meta.url),
    );
    const source = `
      import { createClient } from 'redis';
      import { redisBackend } from ${JSON.stringify(backendModule)};
      const client = createClient({ url: ${JSON.stringify(conformanceServer.url)} });
      await client.connect();
      const backend = redisBackend({ client });
      const got = await backend.tryAcquire({ key: 'no-ioredis', token: 't', ttlMs: 5000 });
      const released = await backend.release({ key: 'no-ioredis', token: 't' });
      await backend.close();
      await client.close();
      let refused;
      try { redisBackend({ url: 'redis://127.0.0.1:1' }); } catch (error) { refused = error.option; }
      console.log(JSON.stringify({ acquired: got.acquired, released, refused }));`;
    const { stdout } = await runToEnd(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', source],
      {
        timeoutMs: 30_000,
        env: {
          ...process.env,
          NODE_OPTIONS: `--import=${HIDE_PACKAGES}`,
          DISTLOCK_TEST_HIDE_PACKAGES: 'ioredis',
        },
      },
    );
    expect(JSON.parse(stdout.trim())).toEqual({
      acquired: true,
      released: 'released',
      refused: 'clientLibrary',
    });
  });

  it('rejects a bad clientLibrary naming it', () => {
    expect(() =>
      redisBackend({ url: 'redis://127.0.0.1:1', clientLibrary: 'jedis' as never }),
    ).toThrow(InvalidArgumentError);
  });
});

describe('redis over node-redis: failures carry their root cause', () => {
  it('an unreachable address fails an acquire at once, with the refused connect at the root', async () => {
    const locks = createLocks({
      backend: redisBackend({ url: 'redis://127.0.0.1:1', clientLibrary: 'node-redis' }),
    });
    try {
      for (const call of [
        () => locks.acquire(freshKey('refused'), { waitMs: 3_000 }),
        () => locks.tryAcquire(freshKey('refused')),
      ]) {
        const { error, tookMs } = await outcome(call);
        expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
        expect(tookMs).toBeLessThan(1_000);
        const cause = rootCause(error) as Error & { code?: string };
        expect(cause.message).toMatch(/ECONNREFUSED 127\.0\.0\.1:1/);
        expect(cause.code).toBe('ECONNREFUSED');
      }
    } finally {
      await locks.close();
    }
  });

  it('a black-holed address fails within the connect timeout (1.5 s), with the timeout at the root', async () => {
    const hole = await startBlackHole();
    const locks = createLocks({
      backend: redisBackend({ url: `redis://127.0.0.1:${hole.port}`, clientLibrary: 'node-redis' }),
    });
    try {
      const { error, tookMs } = await outcome(() =>
        locks.acquire(freshKey('black-hole'), { waitMs: 10_000 }),
      );
      expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
      expect(tookMs).toBeGreaterThan(1_000);
      expect(tookMs).toBeLessThan(1_500 + 1_000);
      expect((rootCause(error) as Error).message).toMatch(/Connection timeout/);
    } finally {
      await locks.close();
      await hole.close();
    }
  });

  it('a script error is a BackendError (not retryable), the reply as its cause', async () => {
    const client = createClient({ url: conformanceServer.url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const key = freshKey('wrongtype');
      const backend = redisBackend({ client, prefix: 'wt:' });
      // A fence counter that is not a number: the script's INCR fails.
      await client.set(lockKeys('wt:', key).fence, 'not-a-number');
      const error = await backend
        .tryAcquire({ key, token: 't', ttlMs: 1_000 })
        .catch((e: unknown) => e);
      expect(error, inspect(error)).toBeInstanceOf(BackendError);
      expect(error).not.toBeInstanceOf(BackendUnavailableError);
      await backend.close();
    } finally {
      client.destroy();
    }
  });
});

describe('redis over node-redis: faults', () => {
  let server: RedisServer;
  const managers: LockManager[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    server = await startRedis();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    await Promise.allSettled(managers.splice(0).map((m) => m.close()));
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    if (server.process.exitCode === null) server.process.kill('SIGCONT');
    await server?.stop();
  });

  function manager(options: Partial<ConstructorParameters<typeof RedisBackend>[0]> = {}) {
    const locks = createLocks({
      backend: redisBackend({ url: server.url, clientLibrary: 'node-redis', ...options }),
      ttlMs: 10_000,
      waitMs: 10_000,
    });
    managers.push(locks);
    return locks;
  }

  it('scripts flushed from the server (SCRIPT FLUSH) are sent again', async () => {
    const locks = manager();
    const first = await locks.acquire(freshKey('flush'));
    await first.release();
    await server.cli(['script', 'flush']);
    const again = await locks.acquire(freshKey('flush'));
    expect(await again.release()).toBe('released');
  });

  it('a connection dropped with CLIENT KILL: waiters keep their place or retry, holders recover', async () => {
    const key = freshKey('client-kill');
    const holder = manager();
    const lease = await holder.acquire(key);
    const waiter = manager().acquire(key);
    await waitersOf(holder, key, 1);
    await server.cli(['client', 'kill', 'type', 'normal']);
    let released: string | undefined;
    await waitUntil(
      'release after reconnect',
      async () => {
        try {
          released = await lease.release();
          return true;
        } catch (error) {
          expect((error as LockError).retryable).toBe(true);
          return false;
        }
      },
      5_000,
    );
    expect(released).toBe('released');
    const next = await waiter;
    expect(next.fence).toBeGreaterThan(lease.fence);
    await next.release();
  });

  it('a paused server (SIGSTOP): calls fail typed by the command timeout, and work once it resumes', async () => {
    const locks = manager({ commandTimeoutMs: 500 });
    const key = freshKey('paused');
    const lease = await locks.acquire(key, { ttlMs: 5_000 });
    server.process.kill('SIGSTOP');
    try {
      const { error, tookMs } = await outcome(() => locks.tryAcquire(freshKey('paused-other')));
      expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
      expect((error as LockError).retryable).toBe(true);
      expect(tookMs).toBeGreaterThanOrEqual(400);
      expect(tookMs).toBeLessThan(500 + 2_000);
    } finally {
      server.process.kill('SIGCONT');
    }
    await waitUntil(
      'a call after SIGCONT',
      async () => (await locks.inspect(key))?.token === lease.token,
      10_000,
      50,
    );
    expect(await lease.release()).toBe('released');
  });

  it('Redis killed while a lease is held: the signal fires by the deadline, calls fail typed and fast, and work after a restart', async () => {
    const key = freshKey('killed');
    const locks = manager();
    const lease = await locks.acquire(key, { ttlMs: 1_500 });
    const waiting = manager().acquire(key, { waitMs: 2_500 });
    await waitersOf(locks, key, 1);
    const lost = new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
    );
    await server.kill();
    const lostAt = await lost;
    expect(lostAt).toBeLessThanOrEqual(lease.expiresAt + 500); // timers may run late when loaded
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
    const started = Date.now();
    const error = await locks.tryAcquire(freshKey('down')).catch((e: unknown) => e);
    expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
    expect((error as LockError).retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_500);
    await expect(lease.extend()).rejects.toBeInstanceOf(LockError);
    const waited = await waiting.catch((e: unknown) => e);
    expect(waited).toBeInstanceOf(LockError);

    // Restarted (empty, scripts gone): acquires work again once the client has reconnected.
    await server.restart();
    let again: Awaited<ReturnType<typeof locks.acquire>> | undefined;
    const fresh = freshKey('restarted');
    await waitUntil(
      'an acquire after the restart',
      async () => {
        again = await locks.acquire(fresh, { waitMs: 0 });
        return true;
      },
      10_000,
      100,
    );
    expect(again!.fence).toBe(1n);
    expect(await again!.release()).toBe('released');
  }, 30_000);

  it('a server killed mid-wait: the timeout carries the last store error, down to the refused reconnect', async () => {
    const key = freshKey('killed-mid-wait');
    const holder = manager();
    const waiter = manager();
    await holder.acquire(key);
    const waiting = outcome(() => waiter.acquire(key, { waitMs: 2_000 }));
    await waitersOf(holder, key, 1);
    await server.kill();
    try {
      const { error } = await waiting;
      expect(error, inspect(error)).toBeInstanceOf(LockTimeoutError);
      expect((error as LockError).cause).toBeInstanceOf(BackendUnavailableError);
      expect((rootCause(error) as { code?: string }).code).toBe('ECONNREFUSED');
    } finally {
      await server.restart();
    }
  }, 30_000);
});
