/**
 * Layout of the lock directory. Each key gets its own sub-directory named by the SHA-256 of the
 * key, so any key string (slashes, dots, unicode, a kilobyte long) maps to a short, safe name. Hex
 * rather than base64url: on case-insensitive filesystems (macOS, Windows) two base64url names
 * could collide.
 *
 * ```
 * <dir>/.fence/<n>                             the fence floor (fence-floor.ts)
 * <dir>/<sha256(key) hex>/<head>               the key's state (key-state.ts); content: the key
 * <dir>/<sha256(key) hex>/d.<version>-<inc>.*  a state too large for the head's name
 * <dir>/.tmp-*                                 a key directory (or the floor) being created
 * ```
 *
 * A key directory exists while its key is used: one whose key is free is removed (reaper.ts).
 * Legacy key directories (the same names) may also hold `t.<digest>` token files: left-overs,
 * removed with their directory.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Prefix of directories under construction. */
export const TEMP_PREFIX = '.tmp-';

/** The directory holding the fence floor. */
export const FENCE_DIR = '.fence';

const KEY_DIR_NAME = /^[0-9a-f]{64}$/;

/** The directory that holds `key`'s head file. */
export function keyDirOf(root: string, key: string): string {
  return join(root, createHash('sha256').update(key, 'utf8').digest('hex'));
}

/** True for entries of the root directory that are key directories. */
export function isKeyDirName(name: string): boolean {
  return KEY_DIR_NAME.test(name);
}
