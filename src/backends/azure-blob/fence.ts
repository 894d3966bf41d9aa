/**
 * Raising a key's fence once its blob lease is held. The fence is a counter in the blob's
 * metadata; the new holder reads it under its lease and writes it back plus one with
 * `If-Match: <the ETag it read>` and its lease id. Writing requires the active lease, and the
 * ETag changes with every write, so the write succeeds only if this holder still holds the lease
 * and nobody wrote since its read: each holder that gets a fence gets one greater than every
 * earlier holder's. A holder that lost its lease between the acquire and the write gets
 * `null` — no fence, and the attempt fails.
 *
 * The write's new ETag is the holding's: nobody else can change the blob while the lease is the
 * holder's, so a later renewal or release conditioned on it (`If-Match`) fails if another holder
 * has taken the key since. Azure refuses to renew a lease under another lease id anyway; Azurite
 * renews a lapsed lease under any id, and the ETag catches that too.
 */
import type { BlobClient } from '@azure/storage-blob';
import { statusOf } from './errors.js';
import { fenceOf, holderMetadata } from './metadata.js';

/**
 * Raise the fence of the blob whose lease `leaseId` holds; the new fence and the blob's ETag after
 * the write, or `null` when the lease is no longer `leaseId`'s (HTTP 412 on the read or the
 * write). Other failures throw.
 */
export async function raiseFence(
  blob: BlobClient,
  leaseId: string,
  token: string,
  leaseSeconds: number,
  abortSignal: AbortSignal | undefined,
): Promise<{ readonly fence: bigint; readonly etag: string | undefined } | null> {
  try {
    const properties = await blob.getProperties({ conditions: { leaseId }, abortSignal });
    const fence = fenceOf(properties.metadata) + 1n;
    const written = await blob.setMetadata(holderMetadata(fence, token, leaseSeconds), {
      conditions: { leaseId, ifMatch: properties.etag },
      abortSignal,
    });
    return { fence, etag: written.etag };
  } catch (error) {
    if (statusOf(error) === 412) return null;
    throw error;
  }
}
