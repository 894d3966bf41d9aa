/** The PostgreSQL guard (`postgresFence`) on a real PostgreSQL 15 cluster started for this file. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresFence } from '../../src/fence/index.js';
import { guardContract } from './guard-contract.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

let server: PostgresServer;
let pool: pg.Pool;
let counter = 0;

beforeAll(async () => {
  server = await startPostgres();
  pool = new pg.Pool({ connectionString: server.url, max: 8 });
  await pool.query(
    'CREATE TABLE resources (id int PRIMARY KEY, value text, fence bigint, shared_fence bigint)',
  );
}, 60_000);
afterAll(async () => {
  await pool?.end();
  await server?.stop();
});

describe('postgresFence', () => {
  guardContract(async () => {
    const id = (counter += 1);
    await pool.query('INSERT INTO resources (id) VALUES ($1)', [id]);
    const row = postgresFence(pool, {
      table: 'resources',
      where: { id },
      sharedFenceColumn: 'shared_fence',
    });
    return {
      read: async (holder) => ((await row.read(holder))?.value as string | null) ?? null,
      write: (value, holder) => row.write({ value }, holder),
      register: (holder) => row.register(holder),
      fences: () => row.fences(),
    };
  });

  it('a missing row reads as null and cannot be written', async () => {
    const row = postgresFence(pool, { table: 'resources', where: { id: -1 } });
    expect(await row.read(1n)).toBeNull();
    await expect(row.write({ value: 'x' }, 1n)).rejects.toMatchObject({ code: 'BACKEND' });
  });

  it('without a shared fence column, readers are still refused after a newer writer', async () => {
    await pool.query('INSERT INTO resources (id) VALUES (-2)');
    const row = postgresFence(pool, { table: 'resources', where: { id: -2 } });
    await row.write({ value: 'w' }, 5n);
    expect((await row.read({ fence: 6n, mode: 'shared' }))?.value).toBe('w');
    await expect(row.read({ fence: 4n, mode: 'shared' })).rejects.toMatchObject({
      code: 'STALE_FENCE',
      highestFence: 5n,
    });
  });

  it('quotes identifiers and names bad options', () => {
    expect(() => postgresFence(pool, { table: '', where: { id: 1 } })).toThrow(/table/);
    expect(() => postgresFence(pool, { table: 't', where: {} })).toThrow(/where/);
  });
});
