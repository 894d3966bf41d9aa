/**
 * The lock backend over Azure blob leases: one blob per key (`names.ts`), the blob lease is the
 * lock, its id derived from the token (`lease-id.ts`), the fence a counter in the blob's metadata
 * (`fence.ts`), leases longer than Azure's 60 s kept by renewal (`keeper.ts`).
 *
 * Round trips: an uncontended acquire takes three (acquire the lease, read the fence, write it);
 * a held key answers `null` after one; `extend` one (renew); `release` one (two when this
 * instance cannot tell that the lease is still live: a release after the deadline, or by token
 * from elsewhere, first reads the lease state so that an expired lease answers `expired`).
 */
import type { BlobClient, ContainerClient } from '@azure/storage-blob';
import type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  ReleaseOutcome,
} from '../../core/backend.js';
import { LockClosedError } from '../../core/errors.js';
import { codeOf, statusOf, toLockError } from './errors.js';
import { raiseFence } from './fence.js';
import { LeaseKeeper } from './keeper.js';
import { leaseIdOf } from './lease-id.js';
import { fenceOf, leaseSecondsOf, tokenOf } from './metadata.js';
import { blobNameOf, blobNames, keyOfBlobName, type BlobNames } from './names.js';
import type { ResolvedAzureBlobOptions } from './options.js';

/** Azure's shortest and longest finite blob lease, in seconds. */
export const MIN_LEASE_SECONDS = 15;
export const MAX_LEASE_SECONDS = 60;

/**
 * The blob lease's duration for a TTL: the TTL rounded up to whole seconds, at most 60 (a longer
 * TTL is kept by renewal). Rounding up keeps the local deadline, counted from the TTL, early.
 */
export function leaseSecondsFor(ttlMs: number): number {
  return Math.max(MIN_LEASE_SECONDS, Math.min(MAX_LEASE_SECONDS, Math.ceil(ttlMs / 1_000)));
}

const CAPABILITIES: BackendCapabilities = Object.freeze({
  fencing: true,
  notify: false,
  fifo: false,
  crossProcess: true,
  shared: false,
  minTtlMs: MIN_LEASE_SECONDS * 1_000,
});

export class AzureBlobBackend implements LockBackend {
  readonly name = 'azure-blob';
  readonly capabilities = CAPABILITIES;
  readonly #container: ContainerClient;
  readonly #names: BlobNames;
  readonly #secrets: readonly string[];
  readonly #createContainer: boolean;
  /** This instance's holdings, by blob name and lease id. */
  readonly #keepers = new Map<string, LeaseKeeper>();
  #closed = false;

  constructor(options: ResolvedAzureBlobOptions) {
    this.#container = options.container;
    this.#names = blobNames(options.prefix);
    this.#secrets = options.secrets;
    this.#createContainer = options.createContainer;
  }

  async tryAcquire(
    request: AcquireRequest,
    options: OperationOptions = {},
  ): Promise<AcquireResult> {
    return this.#call('acquire', options, async (abortSignal) => {
      const { blob, hashed } = this.#blob(request.key);
      const leaseId = leaseIdOf(request.token);
      const seconds = leaseSecondsFor(request.ttlMs);
      const sentAt = Date.now();
      for (let attempt = 0; ; attempt += 1) {
        try {
          await blob.getBlobLeaseClient(leaseId).acquireLease(seconds, { abortSignal });
          break;
        } catch (error) {
          // LeaseAlreadyPresent; or a lease another program breaks with a break period
          // (LeaseIsBreakingAndCannotBeAcquired): held either way, for now.
          if (statusOf(error) === 409) return { acquired: false };
          if (statusOf(error) !== 404 || attempt > 0) throw error;
          await this.#createBlob(blob, hashed ? request.key : '', abortSignal);
        }
      }
      let raised: Awaited<ReturnType<typeof raiseFence>>;
      try {
        raised = await raiseFence(blob, leaseId, request.token, seconds, abortSignal);
      } catch (error) {
        // Unknown whether the write landed: give the lease back rather than hold it for its TTL.
        await blob
          .getBlobLeaseClient(leaseId)
          .releaseLease()
          .catch(() => undefined);
        throw error;
      }
      if (raised === null) {
        // Lost between the acquire and the write, or (a retried write) unsure: no fence, no lease.
        await blob
          .getBlobLeaseClient(leaseId)
          .releaseLease()
          .catch(() => undefined);
        return { acquired: false };
      }
      const keeper = this.#keeper(request.key, blob, leaseId, seconds, raised.etag);
      keeper.keep(sentAt, request.ttlMs);
      return { acquired: true, fence: raised.fence, startedAt: sentAt, lost: keeper.signal };
    });
  }

  async extend(
    lease: LeaseRef,
    ttlMs: number,
    options: OperationOptions = {},
  ): Promise<ExtendResult> {
    return this.#call('extend', options, async (abortSignal) => {
      const { blob } = this.#blob(lease.key);
      const leaseId = leaseIdOf(lease.token);
      const sentAt = Date.now();
      let keeper = this.#keepers.get(holdingId(blob, leaseId));
      try {
        await renew(blob, leaseId, keeper?.etag, abortSignal);
      } catch (error) {
        const outcome = refusal(error);
        if (outcome === undefined) throw error;
        keeper?.stop();
        return { extended: false, reason: outcome };
      }
      if (!keeper && ttlMs > MIN_LEASE_SECONDS * 1_000) {
        // A holding another process (or an earlier instance) made: learn its lease's duration.
        const properties = await blob.getProperties({ conditions: { leaseId }, abortSignal });
        const seconds = leaseSecondsOf(properties.metadata) ?? MIN_LEASE_SECONDS;
        if (ttlMs > seconds * 1_000) {
          keeper = this.#keeper(lease.key, blob, leaseId, seconds, properties.etag);
        }
      }
      keeper?.keep(sentAt, ttlMs);
      return { extended: true };
    });
  }

  async release(lease: LeaseRef, options: OperationOptions = {}): Promise<ReleaseOutcome> {
    return this.#call('release', options, async (abortSignal) => {
      const { blob } = this.#blob(lease.key);
      const leaseId = leaseIdOf(lease.token);
      const keeper = this.#keepers.get(holdingId(blob, leaseId));
      keeper?.stop();
      // Azure also releases a lapsed lease nobody took since: unless this instance knows the
      // lease is live, look first, so that a lapsed lease answers `expired`.
      if (!keeper?.live()) {
        const state = await this.#leaseState(blob, abortSignal);
        if (state !== 'leased') return 'expired';
      }
      try {
        await blob.getBlobLeaseClient(leaseId).releaseLease({
          conditions: keeper?.etag === undefined ? {} : { ifMatch: keeper.etag },
          abortSignal,
        });
        return 'released';
      } catch (error) {
        const outcome = refusal(error);
        if (outcome === undefined) throw error;
        return outcome;
      }
    });
  }

  async inspect(key: string, options: OperationOptions = {}): Promise<LockInfo | null> {
    return this.#call('inspect', options, async (abortSignal) => {
      const { blob } = this.#blob(key);
      let properties;
      try {
        properties = await blob.getProperties({ abortSignal });
      } catch (error) {
        if (statusOf(error) === 404) return null;
        throw error;
      }
      if (properties.leaseState !== 'leased') return null;
      return holderInfo(key, properties.metadata);
    });
  }

  async list(prefix: string, options: OperationOptions = {}): Promise<LockInfo[]> {
    return this.#call('list', options, async (abortSignal) => {
      const found: LockInfo[] = [];
      const escaped = blobNameOf(this.#names, prefix);
      const scans = [{ prefix: this.#names.hashed, filter: true }];
      // A prefix too long to escape can only match hashed names.
      if (!escaped.hashed) scans.unshift({ prefix: escaped.name, filter: false });
      for (const scan of scans) {
        for await (const item of this.#container.listBlobsFlat({
          prefix: scan.prefix,
          includeMetadata: true,
          abortSignal,
        })) {
          if (item.properties.leaseState !== 'leased') continue;
          const key =
            keyOfBlobName(this.#names, item.name) ??
            (
              await this.#container
                .getBlobClient(item.name)
                .downloadToBuffer(0, undefined, { abortSignal })
            ).toString('utf8');
          if (scan.filter && !key.startsWith(prefix)) continue;
          found.push(holderInfo(key, item.metadata));
        }
      }
      return found;
    });
  }

  /** Break the blob's lease at once (`breakLease(0)`); the fence stays in the blob. */
  async forceRelease(key: string, options: OperationOptions = {}): Promise<boolean> {
    return this.#call('forceRelease', options, async (abortSignal) => {
      const { blob } = this.#blob(key);
      if ((await this.#leaseState(blob, abortSignal)) !== 'leased') return false;
      try {
        await blob.getBlobLeaseClient().breakLease(0, { abortSignal });
        return true;
      } catch (error) {
        if (refusal(error) !== undefined) return false;
        throw error;
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const keeper of [...this.#keepers.values()]) keeper.stop();
  }

  /** Run one operation: refused once closed; SDK failures typed and scrubbed; aborts as `signal.reason`. */
  async #call<T>(
    operation: string,
    options: OperationOptions,
    body: (abortSignal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    if (this.#closed) throw new LockClosedError('azure-blob backend');
    const signal = options.signal;
    if (signal?.aborted) throw signal.reason;
    try {
      return await body(signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw toLockError(error, operation, this.#secrets);
    }
  }

  #blob(key: string): { blob: BlobClient; hashed: boolean } {
    const { name, hashed } = blobNameOf(this.#names, key);
    return { blob: this.#container.getBlobClient(name), hashed };
  }

  /** Create the key's (empty, or key-holding) blob, and the container if it is missing. */
  async #createBlob(blob: BlobClient, content: string, abortSignal?: AbortSignal): Promise<void> {
    const body = Buffer.from(content, 'utf8');
    const upload = () =>
      blob
        .getBlockBlobClient()
        .upload(body, body.length, { conditions: { ifNoneMatch: '*' }, abortSignal });
    try {
      await upload();
    } catch (error) {
      const code = codeOf(error);
      if (code === 'BlobAlreadyExists' || statusOf(error) === 412) return; // another client made it
      if (code === 'LeaseIdMissing') return; // made, and leased already, by another client
      if (code !== 'ContainerNotFound' || !this.#createContainer) throw error;
      await this.#container.createIfNotExists({ abortSignal });
      await upload().catch((again: unknown) => {
        if (codeOf(again) !== 'BlobAlreadyExists' && statusOf(again) !== 412) throw again;
      });
    }
  }

  async #leaseState(blob: BlobClient, abortSignal?: AbortSignal): Promise<string | undefined> {
    try {
      return (await blob.getProperties({ abortSignal })).leaseState;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  #keeper(
    key: string,
    blob: BlobClient,
    leaseId: string,
    seconds: number,
    etag: string | undefined,
  ): LeaseKeeper {
    const id = holdingId(blob, leaseId);
    this.#keepers.get(id)?.stop();
    const keeper = new LeaseKeeper(
      key,
      seconds,
      etag,
      async (current) => {
        try {
          await renew(blob, leaseId, current, undefined);
          return 'renewed';
        } catch (error) {
          if (refusal(error) !== undefined) return 'lost';
          throw error;
        }
      },
      () => {
        if (this.#keepers.get(id) === keeper) this.#keepers.delete(id);
      },
    );
    this.#keepers.set(id, keeper);
    return keeper;
  }
}

/**
 * Renew `leaseId`'s lease on `blob`; with the holding's `etag`, only if nobody has written the blob
 * since its fence write (see `fence.ts`: a 412 then means another holder came and went).
 */
async function renew(
  blob: BlobClient,
  leaseId: string,
  etag: string | undefined,
  abortSignal: AbortSignal | undefined,
): Promise<void> {
  await blob.getBlobLeaseClient(leaseId).renewLease({
    conditions: etag === undefined ? {} : { ifMatch: etag },
    abortSignal,
  });
}

function holdingId(blob: BlobClient, leaseId: string): string {
  return `${blob.name}\n${leaseId}`;
}

/**
 * What a refused lease call means for its caller, or `undefined` for a failure to throw. 409s are
 * lease conflicts: another lease id holds it (`not-owner`: mismatch, or broken by an operator), or
 * no lease is there at all (`expired`). A missing blob has nothing held either.
 */
function refusal(error: unknown): 'expired' | 'not-owner' | undefined {
  const status = statusOf(error);
  if (status === 404) return 'expired';
  if (status !== 409 && status !== 412) return undefined;
  const code = codeOf(error) ?? '';
  if (/LeaseNotPresent|LeaseIsBrokenAndCannotBeRenewed|LeaseLost/.test(code)) {
    return code.includes('Broken') ? 'not-owner' : 'expired';
  }
  return 'not-owner';
}

function holderInfo(key: string, metadata: Record<string, string> | undefined): LockInfo {
  // Between a new holder's acquire and its fence write the metadata still names the previous
  // holder: inspect then reports that token (or '' for a blob never held before).
  return { key, token: tokenOf(metadata) ?? '', fence: fenceOf(metadata), remainingMs: null };
}
