/**
 * What a lock blob's metadata holds. Azure metadata names are C# identifiers and values are
 * ASCII header values, so the token is stored base64url-encoded. A holder writes all three,
 * under its lease, before its acquire returns (see `fence.ts`).
 */

/** The last fence issued for the key (decimal). Survives releases and expiries: the blob stays. */
export const FENCE = 'distlockfence';
/** The token of the holder that last raised the fence (base64url of its UTF-8). */
export const TOKEN = 'distlocktoken';
/** The blob lease's duration in whole seconds, for extends made by another process. */
export const LEASE_SECONDS = 'distlockleaseseconds';

export type Metadata = Record<string, string>;

export function fenceOf(metadata: Metadata | undefined): bigint {
  const value = metadata?.[FENCE];
  return value !== undefined && /^\d+$/.test(value) ? BigInt(value) : 0n;
}

export function tokenOf(metadata: Metadata | undefined): string | undefined {
  const value = metadata?.[TOKEN];
  return value === undefined ? undefined : Buffer.from(value, 'base64url').toString('utf8');
}

export function leaseSecondsOf(metadata: Metadata | undefined): number | undefined {
  const value = Number(metadata?.[LEASE_SECONDS]);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

export function holderMetadata(fence: bigint, token: string, leaseSeconds: number): Metadata {
  return {
    [FENCE]: fence.toString(),
    [TOKEN]: Buffer.from(token, 'utf8').toString('base64url'),
    [LEASE_SECONDS]: String(leaseSeconds),
  };
}
