/**
 * Runs the conformance suite on the PostgreSQL backend in one mode, on a throw-away cluster of its
 * own (the multi-process tests, an unreachable server and a wrong password included). Called by
 * `postgres.test.ts` (lease mode) and `postgres-session.test.ts`.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { postgresBackend, type PostgresLockMode } from '../../src/backends/postgres/index.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

const fixture = fileURLToPath(new URL('../fixtures/postgres-backend.ts', import.meta.url));

export function postgresConformance(name: string, mode: PostgresLockMode): void {
  let server: PostgresServer;
  // One pool for every simulated client of this process, as an application shares one: each
  // client's backend is still its own (its own LISTEN connection, queue and state), without each
  // paying for new connections inside the suite's short TTLs.
  let pool: pg.Pool;
  beforeAll(async () => {
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: server.url, max: 40 });
    pool.on('error', () => undefined);
    process.env.DISTLOCK_POSTGRES_URL = server.url;
    process.env.DISTLOCK_POSTGRES_MODE = mode;
  });
  afterAll(async () => {
    await pool?.end();
    await server?.stop();
  });

  runConformanceSuite({
    name,
    createBackend: () => postgresBackend({ pool, mode }),
    processBackendModule: fixture,
    createUnreachableBackend: () =>
      postgresBackend({ url: `postgres://postgres:${server.password}@127.0.0.1:1/postgres`, mode }),
    createBackendWithSecret: () => {
      const secret = 'Wr0ng-Secr3t-pw';
      return {
        backend: postgresBackend({ url: server.urlFor({ password: secret }), mode }),
        secret,
      };
    },
  });
}
