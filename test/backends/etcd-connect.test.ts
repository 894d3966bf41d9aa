/**
 * The etcd backend's first contact: an etcd that refuses connections or never answers fails the
 * first call promptly with a `BackendUnavailableError` whose cause chain ends at the root cause;
 * and credentials (`etcd://user:password@…`) never reach anything thrown.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { promisify, inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import { BackendUnavailableError, LockError } from '../../src/core/errors.js';
import { rootCause } from '../../src/core/redact.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';

const run = promisify(execFile);

/** A loopback port that accepts TCP connections and never says a word (an unresponsive etcd). */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every cause in `error`'s chain, itself first. */
function chain(error: unknown): unknown[] {
  const found: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && found.length < 10;) {
    found.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return found;
}

/** Everything a log could show of `error`: inspect at any depth, and each cause's own fields. */
function everythingPrinted(error: unknown): string {
  return [
    inspect(error, { depth: Infinity, showHidden: true }),
    ...chain(error).map((e) =>
      JSON.stringify(e, Object.getOwnPropertyNames(e as object) as (keyof object)[]),
    ),
  ].join('\n');
}

describe('an unreachable etcd', () => {
  it('refusing connections: the first call fails at once, caused by connect ECONNREFUSED', async () => {
    const backend = etcdBackend({ url: 'etcd://127.0.0.1:1' });
    try {
      const startedAt = Date.now();
      const error = await backend
        .tryAcquire({ key: 'k', token: 't', ttlMs: 5_000 })
        .catch((e: unknown) => e);
      expect(Date.now() - startedAt).toBeLessThan(1_500);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      const root = rootCause(error) as Error & { code?: string; syscall?: string; port?: number };
      expect(root.message).toBe('connect ECONNREFUSED 127.0.0.1:1');
      expect(root).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', port: 1 });
      expect((error as Error).message).toContain('ECONNREFUSED 127.0.0.1:1');

      // The queued path too: it does not wait out its (long) wait for a store that is down.
      const queuedAt = Date.now();
      const queued = await backend.acquire!(
        { key: 'k', token: 't2', ttlMs: 5_000 },
        { signal: AbortSignal.timeout(20_000) },
      ).catch((e: unknown) => e);
      expect(Date.now() - queuedAt).toBeLessThan(1_500);
      expect(queued).toBeInstanceOf(BackendUnavailableError);
      expect((rootCause(queued) as Error).message).toBe('connect ECONNREFUSED 127.0.0.1:1');
    } finally {
      await backend.close();
    }
  });

  it('never answering: the first call fails after connectTimeoutMs, naming the endpoint', async () => {
    const silent = await silentServer();
    const backend = etcdBackend({ url: `etcd://127.0.0.1:${silent.port}` });
    try {
      const startedAt = Date.now();
      const error = await backend
        .tryAcquire({ key: 'k', token: 't', ttlMs: 5_000 })
        .catch((e: unknown) => e);
      const tookMs = Date.now() - startedAt;
      expect(tookMs).toBeGreaterThanOrEqual(2_900); // the default connectTimeoutMs, 3 s
      expect(tookMs).toBeLessThan(6_000);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      const root = rootCause(error) as Error & { code?: string };
      expect(root.code).toBe('ETIMEDOUT');
      expect(root.message).toContain(`127.0.0.1:${silent.port}`);
      const closedAt = Date.now();
      await backend.close();
      expect(Date.now() - closedAt).toBeLessThan(4_000);
    } finally {
      await backend.close();
      await silent.close();
    }
  }, 20_000);
});

describe('etcd credentials', () => {
  const password = 'Secr3t-Pw-0x5f';
  let plain: EtcdServer;
  let secured: EtcdServer;
  beforeAll(async () => {
    [plain, secured] = await Promise.all([startEtcd(1), startEtcd(1)]);
    const etcdctl = (...args: string[]) =>
      run('etcdctl', [`--endpoints=${secured.endpoints[0]}`, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
    await etcdctl('user', 'add', `root:${password}`, '--interactive=false');
    await etcdctl('auth', 'enable');
  }, 60_000);
  afterAll(async () => {
    await Promise.all([plain?.stop(), secured?.stop()]);
  });

  it('the right password works', async () => {
    const url = `etcd://root:${password}@${secured.endpoints[0]}`;
    const backend = etcdBackend({ url });
    try {
      const result = await backend.tryAcquire({ key: 'auth/k', token: 't', ttlMs: 5_000 });
      expect(result.acquired).toBe(true);
      expect(await backend.release({ key: 'auth/k', token: 't' })).toBe('released');
    } finally {
      await backend.close();
    }
  });

  it.each([
    ['a wrong password', () => `etcd://root:${password}@${secured.endpoints[0]}`, 'wrong'],
    ['a server without auth', () => `etcd://root:${password}@${plain.endpoints[0]}`, 'plain'],
  ])('%s: a typed error that shows the password nowhere', async (_label, url, kind) => {
    const used = kind === 'wrong' ? url().replace(password, `${password}-wrong`) : url();
    const backend = etcdBackend({ url: used });
    try {
      const error = await backend
        .tryAcquire({ key: 'auth/k', token: 't', ttlMs: 5_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockError);
      const printed = everythingPrinted(error);
      expect(printed).not.toContain(password);
      expect(printed).not.toContain('Secr3t');
      expect(String(error)).toMatch(/auth/i);
    } finally {
      await backend.close();
    }
  });
});
