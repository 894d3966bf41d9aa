/**
 * Blob names for lock keys: one blob per key, a different name for every key, and every name
 * within Azure's rules (at most 1,024 characters, no `\`, no `.`/`..` path segments, no trailing
 * `.` or `/`, nothing that a URL would normalise).
 *
 * - `<prefix>k/<escaped key>`: the key with every character outside `[A-Za-z0-9_-]` written as
 *   `~` and its UTF-8 bytes in hex (`a/b` → `a~2Fb`). Reversible, and a key prefix escapes to a
 *   name prefix, so `list(prefix)` asks Azure for exactly the blobs under it.
 * - `<prefix>h/<sha-256 of the key, hex>` when the escaped key would not fit (long keys, e.g. a
 *   10 kB key or 300 snowmen): the key itself is the blob's content, read back by `list`.
 *
 * The two forms live under different name prefixes and escaped names contain no `/`, so no key's
 * name can be another key's.
 */
import { createHash } from 'node:crypto';

/** Azure's limit on a blob name, in characters. */
const MAX_BLOB_NAME = 1_024;

const PLAIN = /[A-Za-z0-9_-]/;

/** `key` with every byte outside `[A-Za-z0-9_-]` written `~XX`. */
export function escapeKey(key: string): string {
  let out = '';
  for (const char of key) {
    if (PLAIN.test(char)) out += char;
    else
      for (const byte of Buffer.from(char, 'utf8'))
        out += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The key an escaped name stands for. */
export function unescapeKey(escaped: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length;) {
    if (escaped[i] === '~') {
      bytes.push(Number.parseInt(escaped.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(escaped.charCodeAt(i));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Where a backend's blobs live: the two name forms under its `prefix`. */
export interface BlobNames {
  /** Name prefix of the escaped form. */
  readonly escaped: string;
  /** Name prefix of the hashed form (the key is the blob's content). */
  readonly hashed: string;
}

export function blobNames(prefix: string): BlobNames {
  return { escaped: `${prefix}k/`, hashed: `${prefix}h/` };
}

/** The blob name of `key`, and whether the key must be kept in the blob's content. */
export function blobNameOf(names: BlobNames, key: string): { name: string; hashed: boolean } {
  const escaped = `${names.escaped}${escapeKey(key)}`;
  if (escaped.length <= MAX_BLOB_NAME) return { name: escaped, hashed: false };
  const digest = createHash('sha256').update(key, 'utf8').digest('hex');
  return { name: `${names.hashed}${digest}`, hashed: true };
}

/** The key of an escaped-form blob name (`undefined` for a hashed one: read its content). */
export function keyOfBlobName(names: BlobNames, name: string): string | undefined {
  return name.startsWith(names.escaped) ? unescapeKey(name.slice(names.escaped.length)) : undefined;
}
