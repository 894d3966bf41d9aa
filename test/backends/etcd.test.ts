/**
 * The etcd backend against a real single-member etcd: the conformance suite, then the backend's
 * own behaviour (options, the queue, one write per acquire and per release, session loss).
 */
import { fileURLToPath } from 'node:url';
import { Etcd3, type Watcher } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockClosedError,
  LockLostError,
  LockTimeoutError,
} from '../../src/core/errors.js';
import type { Lease } from '../../src/core/lease.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { freePort, waitUntil } from '../harness/process.js';

const fixture = fileURLToPath(new URL('../fixtures/etcd-backend.ts', import.meta.url));

let server: EtcdServer;
beforeAll(async () => {
  server = await startEtcd(1);
  process.env.DISTLOCK_ETCD_URL = server.url;
});
afterAll(async () => {
  await server?.stop();
});

runConformanceSuite({
  name: 'etcd',
  createBackend: () => etcdBackend({ url: server.url }),
  processBackendModule: fixture,
});

let keyCounter = 0;
const freshKey = (label: string) => `etcd-test/${label}-${process.pid}-${(keyCounter += 1)}`;

/** The store's current revision: every write (put, delete, txn with writes) adds exactly one. */
async function revision(client: Etcd3): Promise<bigint> {
  const response = await client.kv.range({ key: Buffer.from('etcd-test/revision-probe') });
  return BigInt(response.header.revision);
}

describe('etcd backend options', () => {
  it('rejects malformed URLs naming `url`, without echoing credentials', () => {
    for (const url of [
      'not a url',
      'http://user:s3cret@127.0.0.1:2379',
      'etcd://user:s3cret@',
      'etcd://user:s3cret@host',
      'etcd://user:s3cret@host:99999',
      'etcd://user:s3cret@host:1,',
      'etcd:/user:s3cret@host:1',
    ]) {
      let caught: unknown;
      try {
        etcdBackend({ url });
      } catch (error) {
        caught = error;
      }
      expect(caught, url).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).option).toBe('url');
      expect((caught as Error).message).not.toContain('s3cret');
    }
  });

  it('rejects bad options naming the option', () => {
    const url = 'etcd://127.0.0.1:2379';
    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, 'url'],
      [{ url, client: {} }, 'url'],
      [{ client: {} }, 'client'],
      [{ url, sessionTtlMs: 999 }, 'sessionTtlMs'],
      [{ url, sessionTtlMs: 1.5e3 + 0.5 }, 'sessionTtlMs'],
      [{ url, namespace: 5 }, 'namespace'],
      [{ url, layout: 'distlock-v1', namespace: '' }, 'namespace'],
      [{ url, layout: 'go' }, 'layout'],
      [{ url, connectTimeoutMs: 0 }, 'connectTimeoutMs'],
      [{ url, releaseTimeoutMs: -1 }, 'releaseTimeoutMs'],
      [{ url, operationTimeoutMs: 0 }, 'operationTimeoutMs'],
      [{ url, retryTries: 0 }, 'retryTries'],
      [{ url, recheckMs: 1 }, 'recheckMs'],
      [{ url, onSessionEvent: 'x' }, 'onSessionEvent'],
    ];
    for (const [options, option] of cases) {
      let caught: unknown;
      try {
        etcdBackend(options as never);
      } catch (error) {
        caught = error;
      }
      expect(caught, option).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).option).toBe(option);
    }
  });

  it('reports an unreachable etcd as a retryable BackendUnavailableError with the cause', async () => {
    const port = await freePort(); // nothing listens here
    const backend = etcdBackend({
      url: `etcd://127.0.0.1:${port}`,
      operationTimeoutMs: 1_000,
      retryTries: 2,
      retryDelayMs: 10,
    });
    try {
      const error = await backend
        .tryAcquire({ key: freshKey('down'), token: 't', ttlMs: 1_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as BackendUnavailableError).retryable).toBe(true);
      expect((error as Error).cause).toBeInstanceOf(Error);
    } finally {
      await backend.close();
    }
  });

  it('leaves a client it was given open on close, and has a credential-free name', async () => {
    const client = new Etcd3({ hosts: server.endpoints.map((e) => `http://${e}`) });
    try {
      const backend = etcdBackend({ client });
      expect(backend.name).toBe('etcd');
      expect(backend.capabilities).toEqual({
        fencing: true,
        notify: true,
        fifo: true,
        crossProcess: true,
        shared: true,
      });
      const result = await backend.tryAcquire({ key: freshKey('own'), token: 't', ttlMs: 5_000 });
      expect(result.acquired).toBe(true);
      await backend.close();
      await expect(backend.inspect('x')).rejects.toBeInstanceOf(LockClosedError);
      expect(await client.get('anything').string()).toBeNull(); // still open
    } finally {
      client.close();
    }
  });
});

describe('etcd backend behaviour', () => {
  let probe: Etcd3;
  beforeAll(() => {
    probe = new Etcd3({ hosts: server.endpoints.map((e) => `http://${e}`) });
  });
  afterAll(() => probe?.close());

  it('takes exactly one write to acquire and one to release, uncontended and handed off', async () => {
    const locks = createLocks({ backend: etcdBackend({ url: server.url }) });
    const other = createLocks({ backend: etcdBackend({ url: server.url }) });
    try {
      const key = freshKey('writes');
      await (await locks.acquire(key)).release(); // grant the session first (not a KV write)
      let before = await revision(probe);
      const lease = await locks.acquire(key);
      expect(await revision(probe)).toBe(before + 1n);
      expect(await lease.release()).toBe('released');
      expect(await revision(probe)).toBe(before + 2n);
      expect(lease.fence).toBe(before + 1n); // the fence is the entry's create revision

      const held = await locks.acquire(key);
      await (await other.tryAcquire(freshKey('warm-up')))!.release();
      const waiting = other.acquire(key);
      await waitUntil('queued', async () => (await locks.inspect(key))?.waiters === 1);
      before = await revision(probe);
      await held.release();
      const next = await waiting;
      expect(await revision(probe)).toBe(before + 1n); // the release; the handoff writes nothing
      await next.release();
    } finally {
      await Promise.all([locks.close(), other.close()]);
    }
  });

  it("keeps distlock 0.1's layout with layout 'distlock-v1'", async () => {
    const key = freshKey('v1 ☃');
    const backends = [1, 2].map(() => etcdBackend({ url: server.url, layout: 'distlock-v1' }));
    const [a, b] = backends.map((backend) => createLocks({ backend }));
    try {
      const held = await a!.acquire(key);
      const names = await probe
        .getAll()
        .prefix(`distlock/${encodeURIComponent(key)}/`)
        .keys();
      expect(names).toHaveLength(1);
      expect(names[0]).toMatch(/^distlock\/[^/]+\/\d+-0$/);
      expect(await b!.tryAcquire(key)).toBeNull();
      expect((await b!.list('etcd-test/v1 ')).map((i) => i.key)).toContain(key);
      await held.release();
      expect(
        await probe
          .getAll()
          .prefix(`distlock/${encodeURIComponent(key)}/`)
          .keys(),
      ).toEqual([]);
    } finally {
      await Promise.all([a!.close(), b!.close()]);
    }
  });

  it('rejects a key with a lone surrogate (UTF-8 would make it another key) naming `key`', async () => {
    const backend = etcdBackend({ url: server.url });
    try {
      const error = await backend
        .tryAcquire({ key: 'a\uD800b', token: 't', ttlMs: 1_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).option).toBe('key');
    } finally {
      await backend.close();
    }
  });

  it('reports queued waiters in inspect and list, and reuses entry names', async () => {
    const key = freshKey('queue');
    const backends = [1, 2, 3].map(() => etcdBackend({ url: server.url }));
    const [a, b, c] = backends.map((backend) => createLocks({ backend }));
    try {
      const held = await a!.acquire(key);
      const waits = [b!, c!].map((m) => m.acquire(key).then((lease) => lease.release()));
      await waitUntil('two waiters', async () => (await a!.inspect(key))?.waiters === 2);
      const [info] = await a!.list(key);
      expect(info).toMatchObject({ key, token: held.token, fence: held.fence, waiters: 2 });
      await held.release();
      await Promise.all(waits);
      // The same backend acquiring the same key again writes the same entry name.
      const names = new Set<string>();
      for (let i = 0; i < 3; i += 1) {
        const lease = await a!.acquire(key);
        for (const name of await probe.getAll().prefix(`${key}/`).keys()) names.add(name);
        await lease.release();
      }
      expect(names.size).toBe(1);
    } finally {
      await Promise.all([a, b, c].map((m) => m!.close()));
    }
  });

  it('ends a queued acquire whose enqueue txn keeps failing at the wait deadline (free and contended keys)', async () => {
    const lone = await startEtcd(1);
    const backend = etcdBackend({ url: lone.url, operationTimeoutMs: 1_000, retryDelayMs: 50 });
    const locks = createLocks({ backend, ttlMs: 60_000 });
    const other = createLocks({ backend: etcdBackend({ url: lone.url }) });
    try {
      await (await locks.acquire('free')).release();
      // Make `contended` known as contended here: its next acquire sends the full enqueue txn.
      const held = await other.acquire('contended');
      const queued = locks.acquire('contended');
      await waitUntil('queued', async () => (await other.inspect('contended'))?.waiters === 1);
      await held.release();
      await (await queued).release();

      lone.members[0]!.process.kill('SIGSTOP');
      const startedAt = Date.now();
      const outcomes = await Promise.all(
        ['free', 'contended'].map((key) =>
          locks.acquire(key, { waitMs: 1_500 }).then(
            () => 'acquired',
            (error: unknown) => error,
          ),
        ),
      );
      for (const outcome of outcomes) expect(outcome).toBeInstanceOf(LockTimeoutError);
      // The deadline, then taking back an entry whose put may have gone through (bounded).
      expect(Date.now() - startedAt).toBeLessThan(9_000);
    } finally {
      lone.members[0]!.process.kill('SIGCONT');
      await Promise.all([locks.close(), other.close()]);
      await lone.stop();
    }
  }, 30_000);

  it('signals every lease of a session lost at its local deadline when keep-alives stop', async () => {
    const lone = await startEtcd(1);
    const deadlines: number[] = [];
    const backend = etcdBackend({
      url: lone.url,
      sessionTtlMs: 2_000,
      operationTimeoutMs: 1_000,
      onSessionEvent: (event) => {
        if (event.type !== 'lost') deadlines.push(event.deadline);
      },
    });
    const locks = createLocks({ backend, ttlMs: 60_000 });
    try {
      const leases = await Promise.all([locks.acquire('s/a'), locks.acquire('s/b')]);
      await waitUntil('a keep-alive', () => deadlines.length >= 2, 5_000);
      lone.members[0]!.process.kill('SIGSTOP');
      const stoppedAt = Date.now();
      const lostAt = await Promise.all(
        leases.map(
          (lease) =>
            new Promise<number>((resolve) =>
              lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
            ),
        ),
      );
      const deadline = Math.max(...deadlines);
      lone.members[0]!.process.kill('SIGCONT');
      for (const [i, lease] of leases.entries()) {
        expect((lease.signal.reason as LockLostError).reason).toBe('unreachable');
        // At the session's local deadline (timers fire a little late, never early).
        expect(lostAt[i]).toBeGreaterThanOrEqual(deadline);
        expect(lostAt[i]! - deadline).toBeLessThan(500);
      }
      expect(deadline - stoppedAt).toBeLessThanOrEqual(2_000);
      // With etcd back, a new session serves new acquires; the lost locks were revoked or expired.
      const again = await locks.acquire('s/a', { waitMs: 10_000 });
      expect(again.fence).toBeGreaterThan(leases[0]!.fence);
      await again.release();
    } finally {
      lone.members[0]!.process.kill('SIGCONT');
      await locks.close();
      await lone.stop();
    }
  }, 30_000);
});

/** A client whose watchers (the backend's idle anchor first) are recorded as they are created. */
function recordingClient(): { client: Etcd3; watchers: Watcher[]; ended: Set<Watcher> } {
  const client = new Etcd3({ hosts: server.endpoints.map((e) => `http://${e}`) });
  const watchers: Watcher[] = [];
  const ended = new Set<Watcher>(); // cancelled, as etcd confirmed
  const watch = client.watch.bind(client);
  client.watch = () => {
    const builder = watch();
    const create = builder.watcher.bind(builder);
    builder.watcher = () => {
      const watcher = create();
      watchers.push(watcher);
      watcher.once('end', () => ended.add(watcher));
      return watcher;
    };
    return builder;
  };
  return { client, watchers, ended };
}

/** Whether `promise` is still pending after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return !settled;
}

/**
 * Start an acquire of `key` for each of `waiters`, one at a time, each once the one before it is
 * queued (as `probe` sees the queue): the queue then holds them in this order.
 */
async function queueInOrder<
  const W extends readonly { locks: LockManager; signal?: AbortSignal }[],
>(probe: LockManager, key: string, waiters: W): Promise<{ [K in keyof W]: Promise<Lease> }> {
  const pending: Promise<Lease>[] = [];
  for (const [index, { locks, signal }] of waiters.entries()) {
    const waiting = locks.acquire(key, signal ? { signal } : {});
    waiting.catch(() => undefined); // the caller awaits it
    pending.push(waiting);
    await waitUntil(
      `waiter ${index + 1} queued`,
      async () => (await probe.inspect(key))?.waiters === index + 1,
    );
  }
  return pending as { [K in keyof W]: Promise<Lease> };
}

describe('etcd backend predecessor watchers', () => {
  it('hands off in FIFO order over many rounds, reusing the watchers of the entries ahead', async () => {
    const key = freshKey('fifo-rounds');
    const clients = [1, 2, 3].map(() => recordingClient());
    const managers = clients.map(({ client }) =>
      createLocks({ backend: etcdBackend({ client, recheckMs: 60_000 }) }),
    );
    const order: number[] = [];
    let holders = 0;
    let overlaps = 0;
    try {
      await Promise.all(
        managers.map(async (locks, id) => {
          for (let round = 0; round < 15; round += 1) {
            const lease = await locks.acquire(key, { waitMs: 10_000 });
            holders += 1;
            if (holders > 1) overlaps += 1;
            order.push(id);
            await new Promise((resolve) => setTimeout(resolve, 10));
            holders -= 1;
            await lease.release();
          }
        }),
      );
      expect(overlaps).toBe(0);
      expect(order).toHaveLength(45);
      // Everyone re-queues while the next two still wait: a fixed rotation once all have queued.
      for (let i = 3; i < order.length - 2; i += 1) expect(order[i]).toBe(order[i - 3]);
      // Each waiter always waits on the same entries ahead: a handful of watchers, not one a round.
      for (const { watchers } of clients) expect(watchers.length).toBeLessThanOrEqual(4);
      // Closing cancels the watchers kept for reuse (and the anchor).
      await Promise.all(managers.map((locks) => locks.close()));
      for (const { watchers, ended } of clients) expect(ended.size).toBe(watchers.length);
    } finally {
      await Promise.all(managers.map((locks) => locks.close()));
      for (const { client } of clients) client.close();
    }
  }, 30_000);

  it('follows a changed predecessor, and a reused watcher ignores the older deletes it saw', async () => {
    const key = freshKey('predecessor-changes');
    const clients = [1, 2, 3].map(() => recordingClient());
    const [a, b, c] = clients.map(({ client }) =>
      createLocks({ backend: etcdBackend({ client, recheckMs: 60_000 }) }),
    );
    try {
      const held = await a!.acquire(key);
      const leaving = new AbortController();
      const [bWaits, cWaits] = await queueInOrder(a!, key, [
        { locks: b!, signal: leaving.signal },
        { locks: c! },
      ]);
      // B leaves: C's predecessor is now A, which still holds.
      leaving.abort(new Error('left'));
      await expect(bWaits).rejects.toThrow('left');
      await waitUntil('b gone', async () => (await a!.inspect(key))?.waiters === 1);
      expect(await pendingAfter(cWaits, 300)).toBe(true);
      await held.release();
      const cLease = await cWaits;
      expect(cLease.fence).toBeGreaterThan(held.fence);

      // B queues behind C and gets it; then C queues behind B, waiting on B's entry name again:
      // its cached watcher saw B's earlier delete (the abort), which must not count now.
      const bAgain = b!.acquire(key);
      await waitUntil('b queued again', async () => (await a!.inspect(key))?.waiters === 1);
      await cLease.release();
      const bLease = await bAgain;
      const watchersBefore = clients[2]!.watchers.length;
      const cAgain = c!.acquire(key);
      await waitUntil('c queued again', async () => (await a!.inspect(key))?.waiters === 1);
      expect(await pendingAfter(cAgain, 300)).toBe(true);
      await bLease.release();
      const cLease2 = await cAgain;
      expect(cLease2.fence).toBeGreaterThan(bLease.fence);
      expect(clients[2]!.watchers.length).toBe(watchersBefore); // reused, not created anew
      await cLease2.release();
    } finally {
      await Promise.all([a, b, c].map((locks) => locks!.close()));
      for (const { client } of clients) client.close();
    }
  }, 30_000);

  it('reads the queue while its predecessor holds, so that the handoff itself needs no read', async () => {
    const key = freshKey('read-ahead');
    const clients = [1, 2, 3, 4].map(() => recordingClient());
    const [a, b, c, d] = clients.map(({ client }) =>
      createLocks({ backend: etcdBackend({ client, recheckMs: 60_000 }) }),
    );
    // D's reads: a waiter reads with the Range RPC (its enqueue is a txn).
    let dReads = 0;
    const dKv = clients[3]!.client.kv;
    const range = dKv.range.bind(dKv);
    dKv.range = (...args: Parameters<typeof range>) => {
      dReads += 1;
      return range(...args);
    };
    try {
      const aLease = await a!.acquire(key);
      const leaving = new AbortController();
      const [bWaits, cWaits, dWaits] = await queueInOrder(a!, key, [
        { locks: b!, signal: leaving.signal },
        { locks: c! },
        { locks: d! },
      ]);
      // D watches C (its predecessor) and B. B leaves: D reads, and watches C and A now.
      const beforeLeave = dReads;
      leaving.abort(new Error('left'));
      await expect(bWaits).rejects.toThrow('left');
      await waitUntil('d read the queue', () => dReads > beforeLeave);
      expect(await pendingAfter(dWaits, 200)).toBe(true);
      // A lets go: C holds, and D learns meanwhile that C's release will be its grant.
      const beforeHandoff = dReads;
      await aLease.release();
      const cLease = await cWaits;
      await waitUntil('d read the queue again', () => dReads > beforeHandoff);
      expect(await pendingAfter(dWaits, 200)).toBe(true);
      const readsBeforeGrant = dReads;
      await cLease.release();
      const dLease = await dWaits;
      expect(dReads).toBe(readsBeforeGrant); // granted on C's delete event alone
      expect(dLease.fence).toBeGreaterThan(cLease.fence);
      expect(cLease.fence).toBeGreaterThan(aLease.fence);
      await dLease.release();
      expect(await a!.inspect(key)).toBeNull();
    } finally {
      await Promise.all([a, b, c, d].map((locks) => locks!.close()));
      for (const { client } of clients) client.close();
    }
  }, 30_000);

  it('re-checks by range when a watcher breaks, and waits on a fresh one', async () => {
    const key = freshKey('watcher-breaks');
    const waiter = recordingClient();
    const a = createLocks({ backend: etcdBackend({ url: server.url }) });
    const c = createLocks({ backend: etcdBackend({ client: waiter.client, recheckMs: 60_000 }) });
    try {
      const held = await a.acquire(key);
      const waits = c.acquire(key, { waitMs: 20_000 });
      await waitUntil('queued', async () => (await a.inspect(key))?.waiters === 1);
      await waitUntil('watching', () => waiter.watchers.length === 2); // the anchor, then ours
      waiter.watchers[1]!.emit('disconnected', new Error('injected'));
      // The re-check finds the holder still there and watches it again, on a new watcher.
      await waitUntil('watching again', () => waiter.watchers.length === 3);
      expect(await pendingAfter(waits, 200)).toBe(true);
      const releasedAt = Date.now();
      await held.release();
      const lease = await waits;
      expect(Date.now() - releasedAt).toBeLessThan(5_000); // an event, not the 60 s re-check
      await lease.release();
    } finally {
      await Promise.all([a.close(), c.close()]);
      waiter.client.close();
    }
  }, 30_000);
});
