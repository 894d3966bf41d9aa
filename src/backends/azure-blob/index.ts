/**
 * `distlock/azure-blob`: locks on Azure Blob Storage blob leases, over `@azure/storage-blob` (an
 * optional peer dependency). One blob per key (created on first use, and the container too); the
 * blob's lease is the lock.
 *
 * - **TTL.** A blob lease lasts 15 to 60 whole seconds. A `ttlMs` below 15,000 is refused by the
 *   core with an `InvalidArgumentError` naming `ttlMs` (`capabilities.minTtlMs`); one from 15 s to
 *   60 s is one lease of the TTL rounded up to whole seconds; a longer one is a 60 s lease that
 *   this backend renews every 30 s until the TTL ends (the holding's `signal` fires if those
 *   renewals fail, a second before the last renewed lease could end). The local deadline is
 *   always counted from the TTL, so it stays early; a holder that dies frees the key when its
 *   blob lease ends (at most 60 s).
 * - **Token.** The blob lease id must be a GUID: it is derived from the token (the first 128 bits
 *   of its SHA-256, or the token itself when it is a GUID), so any string token works, and a
 *   release or extend by token works from any process.
 * - **Fence.** A counter in the blob's metadata, raised after the lease is acquired and before the
 *   acquire returns by a write conditioned on the blob's ETag and the lease id: every holder's
 *   fence is greater than every earlier holder's, and a holder that lost its lease before the
 *   write gets no lease at all. Blobs stay after release (they keep the fence): one small blob
 *   per key ever locked.
 * - **Waiting.** Azure sends no notifications and keeps no queue: waiters poll with the core's
 *   jittered backoff until their deadline (not FIFO).
 * - **Kinds.** No read-write locks or semaphores (`UnsupportedError`): a blob has one lease.
 * - **inspect / list** read lease state and metadata; Azure does not tell a lease's time left, so
 *   `remainingMs` is `null`. `forceRelease` breaks the lease at once (break period 0).
 * - **Errors.** `LeaseAlreadyPresent` is a held key (`tryAcquire` → `null`); a lease id mismatch
 *   is `not-owner`; no answer, 408, 429 and 5xx are retryable `BackendUnavailableError`s (the
 *   clients this backend builds do not retry by themselves); 401/403 is a non-retryable
 *   {@link AzureAuthError}. No account key or SAS signature reaches any error, at any depth.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { azureBlobBackend } from 'distlock/azure-blob';
 *
 * const locks = createLocks({
 *   backend: azureBlobBackend({
 *     connectionString: process.env.AZURE_STORAGE_CONNECTION_STRING!,
 *     containerName: 'locks',
 *   }),
 *   ttlMs: 30_000,
 * });
 * await locks.withLock('nightly-report', async (lease) => { ... });
 * ```
 */
import { AzureBlobBackend } from './backend.js';
import { resolveOptions, type AzureBlobBackendOptions } from './options.js';

export {
  AzureBlobBackend,
  leaseSecondsFor,
  MAX_LEASE_SECONDS,
  MIN_LEASE_SECONDS,
} from './backend.js';
export { AzureAuthError } from './errors.js';
export { leaseIdOf } from './lease-id.js';
export {
  AZURE_BLOB_DEFAULTS,
  type AzureBlobBackendOptions,
  type AzureBlobCommonOptions,
} from './options.js';

/**
 * A lock backend on Azure blob leases. Pass your `ContainerClient` (it stays yours), a
 * `connectionString` and `containerName`, or a container `url` with a SAS token.
 * @throws InvalidArgumentError for a bad option (naming it), with any secret in it redacted.
 * @example
 * ```ts
 * const backend = azureBlobBackend({ url: 'https://acct.blob.core.windows.net/locks?sv=…&sig=…' });
 * ```
 */
export function azureBlobBackend(options: AzureBlobBackendOptions): AzureBlobBackend {
  return new AzureBlobBackend(resolveOptions(options));
}
