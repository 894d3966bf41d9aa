/**
 * The Azure blob backend against a real Azurite (blob service, in memory): the conformance suite,
 * with its TTLs inside Azure's 15–60 s leases and its tests run concurrently (every expiry takes
 * at least 15 s), the multi-process tests, an unreachable account and a wrong account key.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, vi } from 'vitest';
import { azureBlobBackend } from '../../src/backends/azure-blob/index.js';
import { runConformanceSuite } from '../../src/testing/index.js';
import { AZURITE_KEY, startAzurite, type AzuriteServer } from '../harness/azurite.js';

// Expiry tests wait for 15 s leases (the fence test for three of them in a row).
vi.setConfig({ testTimeout: 120_000 });

const fixture = fileURLToPath(new URL('../fixtures/azure-blob-backend.ts', import.meta.url));
const containerName = 'conformance';
let azurite: AzuriteServer;

beforeAll(async () => {
  azurite = await startAzurite();
  process.env.DISTLOCK_AZURE_CONNECTION_STRING = azurite.connectionString();
  process.env.DISTLOCK_AZURE_CONTAINER = containerName;
});
afterAll(async () => {
  await azurite?.stop();
});

runConformanceSuite({
  name: 'azure-blob',
  createBackend: () =>
    azureBlobBackend({ connectionString: azurite.connectionString(), containerName }),
  processBackendModule: fixture,
  concurrent: true,
  timeScale: 2,
  createUnreachableBackend: () =>
    azureBlobBackend({
      connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;`,
      containerName,
    }),
  createBackendWithSecret: () => {
    // A well-formed key (base64 of 64 bytes) that is not the account's.
    const secret = Buffer.alloc(64, 7).toString('base64');
    return {
      backend: azureBlobBackend({
        connectionString: azurite.connectionString(secret),
        containerName,
      }),
      secret,
    };
  },
});
