/**
 * The etcd backend against a real single-member etcd: the conformance suite, then the backend's
 * own behaviour (options, the queue, one write per acquire and per release, session loss).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';

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
