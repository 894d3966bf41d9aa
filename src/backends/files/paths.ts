/**
 * Layout of the lock directory. Each key gets its own sub-directory named by the SHA-256 of the
 * key, so any key string (slashes, dots, unicode, kilobytes long) maps to a short, safe name. Hex
 * rather than base64url: on case-insensitive filesystems (macOS, Windows) two base64url names
 * could collide.
 *
 * ```
 * <dir>/<sha256(key) hex>/<version>.<record>   the head: one file, content = the original key
 * <dir>/<sha256(key) hex>/t.<sha256(token)>    full text of a token too long for a file name
 * <dir>/.tmp-*                                 a key directory being created (renamed into place)
 * ```
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Prefix of key directories under construction. */
export const TEMP_PREFIX = '.tmp-';

const KEY_DIR_NAME = /^[0-9a-f]{64}$/;

/** The directory that holds `key`'s head file. */
export function keyDirOf(root: string, key: string): string {
  return join(root, createHash('sha256').update(key, 'utf8').digest('hex'));
}

/** True for entries of the root directory that are key directories. */
export function isKeyDirName(name: string): boolean {
  return KEY_DIR_NAME.test(name);
}

/** Path of the file holding the full text of a long token, by the token's digest. */
export function tokenFilePath(keyDir: string, digest: string): string {
  return join(keyDir, `t.${digest}`);
}
