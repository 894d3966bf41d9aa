/**
 * The Redis backend's hardening (issue 13) against real redis-servers: a failure carries its root
 * cause (a refused connect, a black-holed address, a server killed mid-wait); no password
 * reaches anything thrown, whatever form it was given in; fence state stays bounded (one counter
 * per Cluster slot; per-lock counters of earlier versions folded in); a URL without a host is
 * refused; a script that forgets `close()` exits, but not while it waits.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import { lockKeys } from '../../src/backends/redis/keys.js';
import type { LockBackend } from '../../src/core/backend.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockError,
  LockTimeoutError,
} from '../../src/core/errors.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { rootCause } from '../../src/core/redact.js';
import { everythingIn } from '../../src/testing/conformance-robustness.js';
import { startBlackHole } from '../harness/black-hole.js';
import { waitUntil } from '../harness/process.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

let keyCounter = 0;
const freshKey = (label: string) => `hardening/${label}-${(keyCounter += 1)}`;

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

describe('redis: failures carry their root cause', () => {
  it('an unreachable address fails an acquire at once, with the refused connect at the root', async () => {
    const locks = createLocks({ backend: redisBackend({ url: 'redis://127.0.0.1:1' }) });
    try {
      for (const call of [
        () => locks.acquire(freshKey('refused'), { waitMs: 3_000 }),
        () => locks.tryAcquire(freshKey('refused')),
        () => locks.readWrite(freshKey('refused')).read({ waitMs: 3_000 }),
      ]) {
        const { error, tookMs } = await outcome(call);
        expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
        expect(tookMs).toBeLessThan(1_000);
        const cause = rootCause(error) as Error & { code?: string };
        expect(cause.message).toMatch(/connect ECONNREFUSED 127\.0\.0\.1:1/);
        expect(cause.code).toBe('ECONNREFUSED');
      }
    } finally {
      await locks.close();
    }
  });

  it('a black-holed address fails within the connect timeout (1.5 s), with ETIMEDOUT at the root', async () => {
    const hole = await startBlackHole();
    const locks = createLocks({
      backend: redisBackend({ url: `redis://127.0.0.1:${hole.port}` }),
    });
    try {
      const { error, tookMs } = await outcome(() =>
        locks.acquire(freshKey('black-hole'), { waitMs: 10_000 }),
      );
      expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
      expect(tookMs).toBeGreaterThan(1_000);
      expect(tookMs).toBeLessThan(1_500 + 1_000);
      expect((rootCause(error) as { code?: string }).code).toBe('ETIMEDOUT');
    } finally {
      await locks.close();
      await hole.close();
    }
  });

  it('a server killed mid-wait: the timeout carries the last store error, down to the refused reconnect', async () => {
    const server = await startRedis();
    const holder = createLocks({ backend: redisBackend({ url: server.url }) });
    const waiter = createLocks({ backend: redisBackend({ url: server.url }) });
    try {
      const key = freshKey('killed-mid-wait');
      await holder.acquire(key);
      const waiting = outcome(() => waiter.acquire(key, { waitMs: 2_000 }));
      await waitForWaiters(holder, key, 1);
      await server.kill();
      const { error } = await waiting;
      expect(error, inspect(error)).toBeInstanceOf(LockTimeoutError);
      expect((error as LockError).cause).toBeInstanceOf(BackendUnavailableError);
      expect((rootCause(error) as { code?: string }).code).toBe('ECONNREFUSED');
    } finally {
      await Promise.allSettled([holder.close(), waiter.close()]);
      await server.stop();
    }
  }, 20_000);
});

async function waitForWaiters(locks: LockManager, key: string, count: number): Promise<void> {
  const until = Date.now() + 5_000;
  while ((await locks.inspect(key))?.waiters !== count) {
    if (Date.now() > until) throw new Error(`${count} waiters never queued on ${key}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('redis: no password reaches anything thrown', () => {
  const password = 'right-Passw0rd';
  let server: RedisServer;
  const clients: Redis[] = [];
  beforeAll(async () => {
    server = await startRedis({ args: ['--requirepass', password] });
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await server?.stop();
  });

  /** Every form a (wrong) password can be given in, with the texts that must never show. */
  function forms(): { name: string; backend: () => LockBackend; secrets: string[] }[] {
    const at = `127.0.0.1:${server.port}`;
    const plain = 'Secr3tPw';
    // `:`, `@` and `/` must be percent-encoded in a URL; the decoded form is the password.
    const encoded = 'Secr%3A%40t%2FPw';
    const decoded = 'Secr:@t/Pw';
    return [
      {
        name: 'redis://:pw@',
        backend: () => redisBackend({ url: `redis://:${plain}@${at}` }),
        secrets: [plain],
      },
      {
        name: 'redis://user:pw@',
        backend: () => redisBackend({ url: `redis://app:${plain}@${at}` }),
        secrets: [plain],
      },
      {
        name: 'a percent-encoded password',
        backend: () => redisBackend({ url: `redis://app:${encoded}@${at}` }),
        secrets: [encoded, decoded, 'Secr:@t', 't/Pw'],
      },
      {
        name: 'rediss:// (a TLS handshake that fails)',
        backend: () =>
          redisBackend({
            url: `rediss://app:${plain}@${at}`,
            redisOptions: { connectTimeout: 500 },
          }),
        secrets: [plain],
      },
      {
        name: 'redisOptions.password',
        backend: () => redisBackend({ url: `redis://${at}`, redisOptions: { password: plain } }),
        secrets: [plain],
      },
      {
        name: "a passed client's options",
        backend: () => {
          const client = new Redis({
            host: '127.0.0.1',
            port: server.port,
            password: plain,
            maxRetriesPerRequest: 0,
          });
          client.on('error', () => undefined);
          clients.push(client);
          return redisBackend({ client });
        },
        secrets: [plain],
      },
    ];
  }

  it('for every form of URL and option (message, cause chain, own properties, inspect at any depth)', async () => {
    for (const form of forms()) {
      const locks = createLocks({ backend: form.backend(), waitMs: 300 });
      const key = freshKey('secret');
      const errors: unknown[] = [];
      for (const call of [
        () => locks.acquire(key),
        () => locks.tryAcquire(key),
        () => locks.readWrite(key).read(),
        () => locks.release(key, 'token'),
        () => locks.inspect(key),
        () => locks.list(''),
        () => locks.forceRelease(key),
        () => locks.close(),
      ]) {
        const { error } = await outcome(call);
        if (error !== undefined) errors.push(error);
      }
      expect(errors.length, `${form.name}: nothing was refused`).toBeGreaterThan(0);
      for (const error of errors) {
        expect(error, form.name).toBeInstanceOf(LockError);
        const text = everythingIn(error);
        for (const secret of form.secrets) {
          expect(text.includes(secret), `${form.name}: "${secret}" in ${text}`).toBe(false);
        }
      }
    }
  }, 30_000);
});

describe('redis: fence state stays bounded', () => {
  let server: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  async function keysMatching(pattern: string): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found;
  }

  it('100,000 distinct keys leave at most one fence counter per Cluster slot, and nothing else', async () => {
    const prefix = 'bounded:';
    const backend = redisBackend({ url: server.url, prefix });
    try {
      const total = 100_000;
      const inFlight = 512;
      let next = 0;
      // Keys spread over the slots; fences of one key, taken twice, must increase.
      const twice = new Map<string, bigint>();
      let notReleased = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < total) {
            const key = `order-${next++}`;
            const request = { key, token: `t-${key}`, ttlMs: 60_000 };
            const granted = await backend.tryAcquire(request);
            if (!granted.acquired) throw new Error(`${key} was not free`);
            if ((await backend.release(request)) !== 'released') notReleased += 1;
            if (next % 10_000 === 0) twice.set(key, granted.fence);
          }
        }),
      );
      expect(notReleased).toBe(0);
      for (const [key, fence] of twice) {
        const again = await backend.tryAcquire({ key, token: 'again', ttlMs: 1_000 });
        expect(again.acquired && again.fence > fence, key).toBe(true);
        await backend.release({ key, token: 'again' });
      }
      // The counters' keys, `<prefix>fences{<tag>}` (see keys.ts).
      const counters = await keysMatching(`${prefix}fences\\{*`);
      expect(counters.length).toBeGreaterThan(0);
      expect(counters.length).toBeLessThanOrEqual(16_384);
      const everything = await keysMatching(`${prefix}*`);
      // Released locks leave nothing behind but the counters (no per-key `…:f`).
      expect(everything.length).toBe(counters.length);
    } finally {
      await backend.close();
    }
  }, 120_000);

  it('a per-lock fence counter left by an earlier version is folded in: fences stay above it', async () => {
    const prefix = 'legacy:';
    const backend = redisBackend({ url: server.url, prefix });
    try {
      const key = freshKey('legacy');
      const { lock } = lockKeys(prefix, key);
      await admin.set(`${lock}:f`, '1000'); // what the version before kept per lock
      const first = await backend.tryAcquire({ key, token: 'a', ttlMs: 10_000 });
      expect(first.acquired && first.fence).toBe(1001n);
      expect(await admin.exists(`${lock}:f`)).toBe(0);
      await backend.release({ key, token: 'a' });
      const second = await backend.tryAcquire({ key, token: 'b', ttlMs: 10_000 });
      expect(second.acquired && second.fence).toBe(1002n);
      await backend.release({ key, token: 'b' });
    } finally {
      await backend.close();
    }
  });
});

describe('redis: small ones', () => {
  it('refuses a URL without a host, naming `url`', () => {
    for (const url of ['redis://', 'redis:///0', 'rediss://', 'redis://:secret-pw@']) {
      let caught: unknown;
      try {
        redisBackend({ url });
      } catch (error) {
        caught = error;
      }
      expect(caught, url).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).option).toBe('url');
      expect((caught as Error).message).not.toContain('secret-pw');
    }
  });

  it('refuses a prefix with a hash tag, naming `prefix`', () => {
    expect(() => redisBackend({ url: 'redis://127.0.0.1:1', prefix: 'app{1}:' })).toThrow(
      expect.objectContaining({ option: 'prefix' }),
    );
  });

  describe('a script that forgets close()', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedis();
    });
    afterAll(async () => {
      await server?.stop();
    });

    /** Run `body` in a child process (ESM, TypeScript through tsx) with `locks` made from the URL. */
    function runScript(body: string): Promise<{ code: number | null; stdout: string }> {
      const script = `
        import { createLocks } from './src/core/locks.ts';
        import { redisBackend } from './src/backends/redis/index.ts';
        const locks = createLocks({ backend: redisBackend({ url: process.env.REDIS_URL }) });
        ${body}
        console.log('done');
      `;
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        {
          cwd: root,
          env: { ...process.env, REDIS_URL: server.url },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      return new Promise((resolve) => {
        child.on('exit', (code) => {
          clearTimeout(killer);
          resolve({ code, stdout });
        });
      });
    }

    it('exits once its locks are released', async () => {
      const started = Date.now();
      const { code, stdout } = await runScript(`
        const lease = await locks.acquire('forgot-close');
        await lease.release();
      `);
      expect(stdout).toContain('done');
      expect(code, 'killed: the backend held the process open').toBe(0);
      expect(Date.now() - started).toBeLessThan(29_000);
    }, 35_000);

    it('stays alive while it waits in a queue', async () => {
      const locks = createLocks({ backend: redisBackend({ url: server.url }) });
      try {
        const lease = await locks.acquire('forgot-close-wait');
        const exited = runScript(`
          const waited = await locks.acquire('forgot-close-wait', { waitMs: 20_000 });
          console.log('acquired');
          await waited.release();
        `);
        // Released only once the child waits in the queue, and a while after: it must not have
        // exited meanwhile (a child that starts slowly must not make this test vacuous).
        await waitUntil(
          'the child queued',
          async () => (await locks.inspect('forgot-close-wait'))?.waiters === 1,
          20_000,
        );
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await lease.release();
        const { code, stdout } = await exited;
        expect(stdout).toContain('acquired');
        expect(code).toBe(0);
      } finally {
        await locks.close();
      }
    }, 45_000);
  });
});
