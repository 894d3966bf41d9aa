/**
 * A key's state lives in the *name* of its head file: `<version>.<record>`. Renaming the head is
 * the only way state changes, and a rename replaces one name by another atomically, so a reader
 * never sees a half-written record and there is nothing to fsync but the directory.
 *
 * ```
 * <version>.f                                     free
 * <version>.h.<fence>.<expiresAt ms>.<token>       held; token as base64url
 * <version>.h.<fence>.<expiresAt ms>.~<digest>     held by a token too long for a name (> 144 bytes):
 *                                                 sha256 base64url, full text in a side file
 * ```
 */
import { createHash } from 'node:crypto';

/** Tokens up to this many UTF-8 bytes are stored in the head's name (255 bytes at most). */
export const MAX_INLINE_TOKEN_BYTES = 144;

/** A holder's token as stored: in the name, or as a digest with the full text in a side file. */
export type StoredToken =
  | { readonly kind: 'inline'; readonly text: string }
  | { readonly kind: 'digest'; readonly digest: string; readonly text?: string };

/** The state of a key. */
export type LockRecord =
  | {
      readonly state: 'held';
      readonly token: StoredToken;
      readonly fence: bigint;
      /** Wall-clock epoch ms after which the holding counts as free. */
      readonly expiresAt: number;
    }
  | { readonly state: 'free' };

/** A held record. */
export type HeldRecord = LockRecord & { readonly state: 'held' };

/** The record of a key nobody holds. */
export const FREE: LockRecord = Object.freeze({ state: 'free' });

function digestOf(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/** How `token` is stored. */
export function storeToken(token: string): StoredToken {
  return Buffer.byteLength(token, 'utf8') <= MAX_INLINE_TOKEN_BYTES
    ? { kind: 'inline', text: token }
    : { kind: 'digest', digest: digestOf(token), text: token };
}

/** True if `stored` is `token`. */
export function isToken(stored: StoredToken, token: string): boolean {
  return stored.kind === 'inline' ? stored.text === token : stored.digest === digestOf(token);
}

/** The file name of the head at `version` recording `record`. */
export function encodeHead(version: bigint, record: LockRecord): string {
  if (record.state === 'free') return `${version}.f`;
  const token =
    record.token.kind === 'inline'
      ? Buffer.from(record.token.text, 'utf8').toString('base64url')
      : `~${record.token.digest}`;
  return `${version}.h.${record.fence}.${record.expiresAt}.${token}`;
}

const HEAD = /^(0|[1-9][0-9]*)\.(?:f|h\.([0-9]+)\.([0-9]+)\.(~?)([A-Za-z0-9_-]*))$/;

/** Parse a key directory entry; `undefined` if it is not a head. */
export function decodeHead(name: string): { version: bigint; record: LockRecord } | undefined {
  const match = HEAD.exec(name);
  if (!match) return undefined;
  const [, version = '0', fence, expiresAt = '0', tilde, token = ''] = match;
  if (fence === undefined) return { version: BigInt(version), record: FREE };
  return {
    version: BigInt(version),
    record: {
      state: 'held',
      fence: BigInt(fence),
      expiresAt: Number(expiresAt),
      token:
        tilde === '~'
          ? { kind: 'digest', digest: token }
          : { kind: 'inline', text: Buffer.from(token, 'base64url').toString('utf8') },
    },
  };
}

/** True when `record` names a holder whose lease has not expired at `now`. */
export function isLive(record: LockRecord, now: number): record is HeldRecord {
  return record.state === 'held' && record.expiresAt > now;
}
