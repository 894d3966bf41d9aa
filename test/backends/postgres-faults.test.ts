/**
 * The PostgreSQL backend's own fault tests, on a real throw-away cluster: the LISTEN connection
 * and a session-mode connection terminated by the server, a server restart while a lease is held,
 * a client clock an hour off the server's, a lease table that is missing or read-only, quoted
 * schema and table names, bad options, and fenced writes in SQL.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  fencedUpdate,
  LeaseTableError,
  migrate,
  postgresBackend,
  type PostgresBackend,
  type PostgresBackendOptions,
} from '../../src/backends/postgres/index.js';
import { SESSION_LOCK_SPACE } from '../../src/backends/postgres/schema.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockLostError,
} from '../../src/core/errors.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { waitUntil } from '../harness/process.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

let server: PostgresServer;
const managers: LockManager[] = [];
const pools: pg.Pool[] = [];
beforeAll(async () => {
  server = await startPostgres();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.allSettled(managers.splice(0).map((m) => m.close()));
  await Promise.allSettled(pools.splice(0).map((p) => p.end()));
});
afterAll(async () => {
  await server?.stop();
});

let keyCounter = 0;
const freshKey = (label: string) => `pg-faults/${label}-${(keyCounter += 1)}`;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function manager(options: Partial<PostgresBackendOptions> = {}, ttlMs = 10_000): LockManager {
  const backend = postgresBackend({ url: server.url, ...options } as PostgresBackendOptions);
  const locks = createLocks({ backend, ttlMs, waitMs: 10_000 });
  managers.push(locks);
  return locks;
}

function pool(url = server.url): pg.Pool {
  const created = new pg.Pool({ connectionString: url });
  created.on('error', () => undefined);
  pools.push(created);
  return created;
}

async function queuedWaiters(locks: LockManager, key: string, count: number): Promise<void> {
  await waitUntil(`${count} waiters on ${key}`, async () => {
    return ((await locks.inspect(key))?.waiters ?? 0) >= count;
  });
}

describe('postgres: connections terminated by the server', () => {
  it('waiters still get the lock, in order, when the LISTEN connection is terminated', async () => {
    const key = freshKey('listen');
    const holder = manager();
    const waiters = manager();
    const backend = waiters.backend as PostgresBackend;
    const lease = await holder.acquire(key);
    const order: number[] = [];
    const waiting: Promise<void>[] = [];
    for (const i of [0, 1, 2]) {
      waiting.push(
        waiters.acquire(key, { waitMs: 20_000 }).then(async (next) => {
          order.push(i);
          await delay(20);
          await next.release();
        }),
      );
      await queuedWaiters(holder, key, i + 1); // one at a time: the arrival order is known
    }
    await waitUntil('the LISTEN connection', () => backend.listenerProcessId !== undefined);
    const listenerPid = backend.listenerProcessId!;
    expect(await server.terminate(listenerPid)).toBe(true);
    await waitUntil('the LISTEN connection to go', () => backend.listenerProcessId !== listenerPid);
    const releasedAt = Date.now();
    await lease.release();
    await Promise.all(waiting);
    expect(order).toEqual([0, 1, 2]);
    // Polled while the LISTEN connection was down, woken by it once back: not at a heartbeat.
    expect(Date.now() - releasedAt).toBeLessThan(5_000);
    await waitUntil('the LISTEN connection to come back', () => {
      const pid = backend.listenerProcessId;
      return pid !== undefined && pid !== listenerPid;
    });
  });

  it('session mode: a terminated holder connection loses the lease at once and frees the key', async () => {
    const key = freshKey('session-terminated');
    const holder = manager({ mode: 'session' }, 30_000);
    const other = manager({ mode: 'session' });
    const lease = await holder.acquire(key);
    const lost = new Promise<unknown>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(lease.signal.reason), { once: true }),
    );
    const [row] = await server.sql<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid
         AND objid = ($2::bigint & 2147483647)::oid AND objsubid = 2`,
      [SESSION_LOCK_SPACE, lease.fence.toString()],
    );
    expect(row, 'the holding has an advisory lock on its own connection').toBeDefined();
    const waiting = other.acquire(key, { waitMs: 20_000 });
    await queuedWaiters(holder, key, 1);
    const terminatedAt = Date.now();
    expect(await server.terminate(row!.pid)).toBe(true);
    const reason = await lost;
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as LockLostError).reason).toBe('unreachable');
    const next = await waiting;
    // Freed by the connection's end, not by the 30 s TTL.
    expect(Date.now() - terminatedAt).toBeLessThan(10_000);
    expect(next.fence).toBeGreaterThan(lease.fence);
    expect(await lease.release()).not.toBe('released');
    await next.release();
  });
});

describe('postgres: server restart', () => {
  for (const mode of ['fast', 'immediate'] as const) {
    it(`a lease held across a ${mode} restart is still held, and fences keep growing`, async () => {
      const key = freshKey(`restart-${mode}`);
      const holder = manager({}, 30_000);
      const other = manager();
      const lease = await holder.acquire(key);
      await server.restart(mode);
      // The pools' connections died with the server: the first call on each may fail, retryable.
      const retry = async <T>(call: () => Promise<T>): Promise<T> => {
        for (let attempt = 0; ; attempt += 1) {
          try {
            return await call();
          } catch (error) {
            if (!(error instanceof BackendUnavailableError) || attempt >= 5) throw error;
            await delay(100);
          }
        }
      };
      expect(await retry(() => other.tryAcquire(key))).toBeNull();
      await retry(() => lease.extend(30_000));
      expect((await retry(() => other.inspect(key)))?.token).toBe(lease.token);
      expect(await retry(() => lease.release())).toBe('released');
      const next = await retry(() => other.acquire(key));
      expect(next.fence).toBeGreaterThan(lease.fence);
      await next.release();
    }, 60_000);
  }
});

describe('postgres: a client clock an hour off the server', () => {
  for (const offsetMs of [3_600_000, -3_600_000]) {
    it(`times stay right with the client clock ${offsetMs > 0 ? 'ahead' : 'behind'} by an hour`, async () => {
      // Every Date.now() of this process (the core's and the backend's) runs an hour off.
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offsetMs);
      const key = freshKey('clock');
      const a = manager();
      const b = manager();
      const before = Date.now();
      const held = await a.acquire(key, { ttlMs: 2_000 });
      // The local deadline is on the local clock, the TTL counted from the request.
      expect(held.expiresAt).toBeGreaterThan(before + 1_000);
      expect(held.expiresAt).toBeLessThanOrEqual(before + 2_000);
      const info = await b.inspect(key);
      expect(info?.remainingMs).toBeGreaterThan(1_000);
      expect(info?.remainingMs).toBeLessThanOrEqual(2_000);
      // A handed-off lease: its start is placed on the local clock by the database's differences.
      const waiting = b.acquire(key, { ttlMs: 3_000 });
      await queuedWaiters(a, key, 1);
      await held.release();
      const handed = await waiting;
      const now = Date.now();
      expect(handed.expiresAt).toBeGreaterThan(now + 2_000);
      expect(handed.expiresAt).toBeLessThanOrEqual(now + 3_000);
      // An abandoned lease expires after its TTL on the server's clock, not an hour early or late.
      const abandoned = await a.acquire(freshKey('clock-abandoned'), { ttlMs: 500 });
      const startedAt = performance.now();
      const next = await b.acquire(abandoned.key, { waitMs: 10_000 });
      const waited = performance.now() - startedAt;
      expect(waited).toBeGreaterThan(300);
      expect(waited).toBeLessThan(5_000);
      expect(abandoned.lost).toBe(true);
      await Promise.all([handed.release(), next.release()]);
    });
  }
});

describe('postgres: the lease table missing or read-only', () => {
  it('a missing table with autoMigrate off is a typed LeaseTableError (missing); migrate() creates it', async () => {
    const schema = `missing_${Date.now()}`;
    const locks = manager({ schema, autoMigrate: false });
    for (const call of [
      () => locks.acquire('k'),
      () => locks.tryAcquire('k'),
      () => locks.inspect('k'),
      () => locks.release('k', 'token'),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseTableError);
      expect(error).toMatchObject({ problem: 'missing', retryable: false });
      expect((error as Error).message).toContain(schema);
    }
    await migrate(pool(), { schema });
    const lease = await locks.acquire('k');
    expect(lease.fence).toBeGreaterThan(0n);
    await lease.release();
  });

  it('a role without write privileges, or in read-only transactions, gets LeaseTableError (read-only)', async () => {
    const schema = `ro_${Date.now()}`;
    await migrate(pool(), { schema });
    const password = 'ro-password-1';
    await server.sql(`CREATE ROLE reader_${schema} LOGIN PASSWORD '${password}'`);
    await server.sql(`GRANT USAGE ON SCHEMA ${schema} TO reader_${schema}`);
    await server.sql(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO reader_${schema}`);
    await server.sql(`CREATE ROLE writer_${schema} LOGIN PASSWORD '${password}'`);
    await server.sql(`GRANT USAGE ON SCHEMA ${schema} TO writer_${schema}`);
    await server.sql(`GRANT ALL ON ALL TABLES IN SCHEMA ${schema} TO writer_${schema}`);
    await server.sql(`GRANT ALL ON ALL SEQUENCES IN SCHEMA ${schema} TO writer_${schema}`);
    await server.sql(`ALTER ROLE writer_${schema} SET default_transaction_read_only = on`);
    for (const user of [`reader_${schema}`, `writer_${schema}`]) {
      const locks = createLocks({
        backend: postgresBackend({ url: server.urlFor({ user, password }), schema }),
      });
      managers.push(locks);
      const error = await locks.tryAcquire('k').catch((e: unknown) => e);
      expect(error, user).toBeInstanceOf(LeaseTableError);
      expect(error).toMatchObject({ problem: 'read-only', retryable: false });
      expect(String(error)).not.toContain(password);
      // Reading still works: nobody holds it.
      expect(await locks.inspect('k')).toBeNull();
    }
  });
});

describe('postgres: names and options', () => {
  it('works with schema and table names that need quoting', async () => {
    const locks = manager({ schema: 'Locks "quoted"', table: 'My Leases' });
    const other = manager({ schema: 'Locks "quoted"', table: 'My Leases' });
    const lease = await locks.acquire('k');
    expect(await other.tryAcquire('k')).toBeNull();
    const rows = await server.sql<{ key: string }>(
      'SELECT key FROM "Locks ""quoted"""."My Leases"',
    );
    expect(rows.map((row) => row.key)).toContain('k');
    await lease.release();
  });

  it('rejects bad options naming the option, never echoing a password', () => {
    const bad: Array<[PostgresBackendOptions, string]> = [
      [{} as PostgresBackendOptions, 'pool'],
      [{ url: 'redis://u:hunter2@h:1' }, 'url'],
      [{ url: 'postgres://u:hunter2@/db' }, 'url'],
      [{ url: 'not a url hunter2' }, 'url'],
      [{ url: server.url, mode: 'sessions' as never }, 'mode'],
      [{ url: server.url, table: '' }, 'table'],
      [{ url: server.url, table: 'x'.repeat(60) }, 'table'],
      [{ url: server.url, schema: 'a\0b' }, 'schema'],
      [{ url: server.url, queueEntryTtlMs: 0 }, 'queueEntryTtlMs'],
      [{ url: server.url, autoMigrate: 'yes' as never }, 'autoMigrate'],
      [{ pool: {} as pg.Pool }, 'pool'],
    ];
    for (const [options, option] of bad) {
      let caught: unknown;
      try {
        postgresBackend(options);
      } catch (error) {
        caught = error;
      }
      expect(caught, option).toBeInstanceOf(InvalidArgumentError);
      expect((caught as InvalidArgumentError).option).toBe(option);
      expect((caught as Error).message).not.toContain('hunter2');
    }
  });

  it('refuses a key or token PostgreSQL text cannot hold (NUL)', async () => {
    const locks = manager();
    const error = await locks.acquire('a\0b').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).option).toBe('key');
    const tokenError = await locks.tryAcquire('k', { token: 't\0' }).catch((e: unknown) => e);
    expect((tokenError as InvalidArgumentError).option).toBe('token');
  });

  it('deletes the rows of idle keys, so the table holds only keys in use (fences keep growing)', async () => {
    const table = `sweep_${Date.now()}`;
    const locks = manager({ table, idleKeyTtlMs: 300 });
    let lastFence = 0n;
    for (let i = 0; i < 30; i += 1) {
      const lease = await locks.acquire(`k${i}`);
      lastFence = lease.fence;
      await lease.release();
    }
    const abandoned = await locks.acquire('abandoned', { ttlMs: 100 });
    const count = async () =>
      Number((await server.sql<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`))[0]!.n);
    await delay(700);
    const held = await locks.acquire('held'); // an acquire after the period sweeps, in the background
    await waitUntil('the idle rows to go', async () => (await count()) === 1);
    expect((await locks.acquire('k0')).fence).toBeGreaterThan(held.fence);
    expect(held.fence).toBeGreaterThan(lastFence);
    expect(abandoned.lost).toBe(true);
  });

  it('uses the pool it is given and leaves it open', async () => {
    const own = pool();
    const locks = createLocks({ backend: postgresBackend({ pool: own }) });
    const lease = await locks.acquire(freshKey('pool'));
    await lease.release();
    await locks.close();
    expect((await own.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
  });
});

describe('postgres: fenced writes in SQL', () => {
  it("a stale holder's fenced UPDATE changes no row once a newer holder has written or read", async () => {
    const db = pool();
    const table = `accounts_${Date.now()}`;
    await db.query(
      `CREATE TABLE ${table} (id int PRIMARY KEY, balance int NOT NULL, fence bigint NOT NULL DEFAULT 0)`,
    );
    await db.query(`INSERT INTO ${table} (id, balance) VALUES (1, 100), (2, 100)`);
    const a = manager();
    const b = manager();
    for (const id of [1, 2]) {
      const key = freshKey(`account-${id}`);
      // A holds, pauses past its TTL; B takes over.
      const stale = await a.acquire(key, { ttlMs: 300 });
      const first = await fencedUpdate(db, {
        table,
        set: { balance: 90 },
        where: { id },
        fence: stale.fence,
      });
      expect(first.updated).toBe(true);
      const fresh = await b.acquire(key, { waitMs: 5_000 });
      expect(fresh.fence).toBeGreaterThan(stale.fence);
      if (id === 1) {
        // B writes first.
        const written = await fencedUpdate(db, {
          table,
          set: { balance: 50 },
          where: { id },
          fence: fresh.fence,
        });
        expect(written.updated).toBe(true);
      } else {
        // B only reads, through a fenced claim: enough to shut A out.
        const read = await fencedUpdate<{ balance: number }>(db, {
          table,
          where: { id },
          fence: fresh.fence,
          returning: ['balance'],
        });
        expect(read.rows).toEqual([{ balance: 90 }]);
      }
      const late = await fencedUpdate(db, {
        table,
        set: { balance: 0 },
        where: { id },
        fence: stale.fence,
      });
      expect(late).toMatchObject({ updated: false, rowCount: 0 });
      const [row] = (await db.query(`SELECT balance, fence FROM ${table} WHERE id = $1`, [id]))
        .rows;
      expect(row).toEqual({ balance: id === 1 ? 50 : 90, fence: fresh.fence.toString() });
      await fresh.release();
    }
  });
});
