/**
 * On Azure Blob Storage (Azurite): the floors a blob-lease lock must pay, and the counter B2's
 * critical sections update. Each client has its own `ContainerClient` (its own HTTP connections).
 *
 * - `lease pairs`: acquire a blob lease + release it (2 round trips): the least any lock on blob
 *   leases pays, with no fence.
 * - `fenced lease floor`: acquire + read the fence + write it back under the lease + release
 *   (4 round trips), hand-rolled: what a fenced blob-lease lock pays at least, as distlock does.
 */
import { randomUUID } from 'node:crypto';
import {
  BlobServiceClient,
  type BlobClient,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import type { CounterFactory } from '../scenarios/counter.js';
import type { Contender, LockClient } from './contender.js';

const PIPELINE: StoragePipelineOptions = { retryOptions: { maxTries: 1 } };

/** A container client of its own, the container created if missing. */
export async function connectContainer(
  connectionString: string,
  container: string,
): Promise<ContainerClient> {
  const client = BlobServiceClient.fromConnectionString(
    connectionString,
    PIPELINE,
  ).getContainerClient(container);
  await client.createIfNotExists();
  return client;
}

/** The blob of a key (created on first use, as any blob-lease lock must). */
async function blobFor(
  container: ContainerClient,
  known: Map<string, BlobClient>,
  key: string,
): Promise<BlobClient> {
  let blob = known.get(key);
  if (!blob) {
    blob = container.getBlobClient(`floor/${Buffer.from(key).toString('base64url')}`);
    await blob
      .getBlockBlobClient()
      .upload('', 0, { conditions: { ifNoneMatch: '*' } })
      .catch(() => undefined);
    known.set(key, blob);
  }
  return blob;
}

function floor(connectionString: string, container: string, fenced: boolean): Contender {
  return {
    name: fenced ? 'fenced lease floor' : 'lease pairs',
    role: 'floor',
    excludes: false,
    tuned: false,
    settings: fenced
      ? 'acquireLease + getProperties + setMetadata (If-Match) + releaseLease: 4 round trips'
      : 'acquireLease(15) + releaseLease: 2 round trips, no fence',
    async createClient(): Promise<LockClient<{ blob: BlobClient; leaseId: string }>> {
      const client = await connectContainer(connectionString, container);
      const known = new Map<string, BlobClient>();
      return {
        async acquire(key) {
          const blob = await blobFor(client, known, key);
          const leaseId = randomUUID();
          await blob.getBlobLeaseClient(leaseId).acquireLease(15);
          if (fenced) {
            const properties = await blob.getProperties({ conditions: { leaseId } });
            const fence = BigInt(properties.metadata?.fence ?? '0') + 1n;
            await blob.setMetadata(
              { fence: String(fence) },
              { conditions: { leaseId, ifMatch: properties.etag } },
            );
          }
          return { blob, leaseId };
        },
        async release({ blob, leaseId }) {
          await blob.getBlobLeaseClient(leaseId).releaseLease();
        },
        close: async () => undefined,
      };
    },
  };
}

/** The two floors (see the module doc). */
export function azureFloors(connectionString: string, container: string): Contender[] {
  return [floor(connectionString, container, false), floor(connectionString, container, true)];
}

/** A counter in a blob: download + upload on a client of its own. */
export function azureCounter(connectionString: string, container: string): CounterFactory {
  return async (key) => {
    const client = await connectContainer(connectionString, container);
    const blob = client.getBlockBlobClient(`counter/${Buffer.from(key).toString('base64url')}`);
    return {
      get: async () => {
        try {
          return Number((await blob.downloadToBuffer()).toString('utf8') || 0);
        } catch {
          return 0; // not written yet
        }
      },
      set: async (value) => {
        const body = String(value);
        await blob.upload(body, Buffer.byteLength(body));
      },
      close: async () => undefined,
    };
  };
}
