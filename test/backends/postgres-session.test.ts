/**
 * The PostgreSQL backend in session mode (each holding tied to a connection of its own by an
 * advisory lock) against a real throw-away cluster: the conformance suite, where a killed holder
 * frees the key at once (its connection ends) instead of at its TTL (`endsWithConnection`).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { postgresBackend } from '../../src/backends/postgres/index.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

const fixture = fileURLToPath(new URL('../fixtures/postgres-backend.ts', import.meta.url));

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
  process.env.DISTLOCK_POSTGRES_URL = server.url;
  process.env.DISTLOCK_POSTGRES_MODE = 'session';
});
afterAll(async () => {
  await server?.stop();
});

runConformanceSuite({
  name: 'postgres (session mode)',
  createBackend: () => postgresBackend({ url: server.url, mode: 'session' }),
  processBackendModule: fixture,
  createUnreachableBackend: () =>
    postgresBackend({
      url: `postgres://postgres:${server.password}@127.0.0.1:1/postgres`,
      mode: 'session',
    }),
  createBackendWithSecret: () => {
    const secret = 'Wr0ng-Secr3t-pw';
    const url = server.urlFor({ password: secret });
    return { backend: postgresBackend({ url, mode: 'session' }), secret };
  },
});
