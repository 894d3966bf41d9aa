/**
 * The double-payment demo on PostgreSQL (`--backend postgres://…`): locks in the lease table and
 * the accounts in a table beside them, every fenced read and write one `UPDATE … WHERE fence <=`.
 * The unlocked run breaks invariants; the locked runs break none, and the worker frozen past its
 * lease is refused by the database's fence check.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runDemo } from '../../examples/double-payment/main.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

it('runs with its ledger in PostgreSQL: the fence refuses the frozen worker in SQL', async () => {
  const result = await runDemo({ backendUrl: server.url, output: 'silent', payments: 120 });
  const [unlocked, locked, frozen] = result.runs;
  expect(unlocked!.brokenInvariants).toBeGreaterThan(0);
  expect(locked!.brokenInvariants).toBe(0);
  expect(frozen!.brokenInvariants).toBe(0);
  expect(frozen!.fenceRejections).toBeGreaterThanOrEqual(1);
  expect(result.exitCode).toBe(0);
  // The accounts lived in PostgreSQL, and each run dropped its table afterwards.
  const tables = await server.sql<{ name: string }>(
    "SELECT tablename AS name FROM pg_tables WHERE tablename LIKE 'distlock_demo_%'",
  );
  expect(tables).toEqual([]);
  const leases = await server.sql<{ count: string }>('SELECT count(*) FROM distlock_leases');
  expect(Number(leases[0]!.count)).toBeGreaterThan(0);
}, 180_000);
