/**
 * Azure wants a GUID as a lease id; distlock's tokens are any non-empty string (128 random bits in
 * base64url by default, or the caller's own). The lease id is therefore derived from the token: the
 * first 128 bits of its SHA-256, laid out as a version-4-shaped GUID. The same token always gives
 * the same lease id, so a release or an extend by token works from any process, and nothing but the
 * token is needed to own the lease. A token that already is a GUID is used as it is (lowercased),
 * so that other programs holding the same blob lease by GUID can share a holding with distlock.
 */
import { createHash } from 'node:crypto';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The blob lease id that `token` holds its lease under. */
export function leaseIdOf(token: string): string {
  if (GUID.test(token)) return token.toLowerCase();
  const hex = createHash('sha256').update(token, 'utf8').digest('hex');
  // Version 4 and variant bits set, as GUID parsers expect; 122 bits of the hash remain.
  const version = `4${hex.slice(13, 16)}`;
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16) + hex.slice(17, 20);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${version}-${variant}-${hex.slice(20, 32)}`;
}
