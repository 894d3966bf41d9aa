/**
 * Compare-and-swap on a key's state with a single atomic filesystem operation: `rename()`.
 *
 * Every key has exactly one *head* file whose name is its state (`record.ts`); the name starts
 * with a version number that grows by one on every change. To change the state, a process that
 * read head `n.<old>` renames it to `n+1.<new>`. Of all processes that read the same head, exactly
 * one rename succeeds: the others find the source name gone (ENOENT), a conflict, and re-read.
 * Taking over an expired lock is therefore decided by the filesystem: no "is it stale? delete it!
 * create mine!" window (the proper-lockfile race where two processes both take over).
 *
 * Why not a per-key mutex file created with O_EXCL? A process that dies holding it leaves it
 * behind, and breaking a stale mutex has the same race again. Why not a new file per version
 * (O_EXCL or link/symlink) with old ones deleted? Deleting reopens names (ABA), which costs an
 * extra check per write, and creating an inode is the slowest metadata operation there is (about
 * 0.2 to 2 ms on ext4 here, against tens of microseconds for a rename). Names with a version are
 * never reused, so a process that slept on an old head can never rename it: it no longer exists.
 *
 * A crash leaves nothing half-done (a rename happened or it did not); at most an ignored
 * `.tmp-*` directory or token side file is left behind.
 * The version doubles as the fence counter: a new holder's fence is the version that records it,
 * so fences strictly increase across holders, releases and restarts, and, with `fsync` (the
 * directory is synced after each new fence), power loss.
 */
import {
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { BackendUnavailableError } from '../../core/errors.js';
import { hasCode, toLockError } from './fs-errors.js';
import { TEMP_PREFIX, tokenFilePath } from './paths.js';
import { FREE, decodeHead, encodeHead, type LockRecord, type StoredToken } from './record.js';

/** Listings that may show no head before a key directory counts as emptied (see readHead). */
const MAX_EMPTY_LISTINGS = 3;

/** The head of a key: its version and state, and the file name that records them. */
export interface Head {
  readonly version: bigint;
  readonly record: LockRecord;
  /** `undefined` while the key has no directory (or an emptied one): a key never locked is free. */
  readonly name: string | undefined;
}

const ABSENT: Head = Object.freeze({ version: 0n, record: FREE, name: undefined });

/** Read the head of the key stored in `keyDir`. */
export async function readHead(keyDir: string): Promise<Head> {
  for (let attempt = 1; ; attempt++) {
    let names: string[];
    try {
      names = await readdir(keyDir);
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return ABSENT;
      throw toLockError(error, 'read lock directory');
    }
    let head: Head | undefined;
    for (const name of names) {
      const decoded = decodeHead(name);
      // A listing taken during a rename may show both names; the higher version is the newer.
      if (decoded && (head === undefined || decoded.version > head.version)) {
        head = { ...decoded, name };
      }
    }
    if (head) return head;
    // A key directory is created with its head inside, so a listing without one raced a rename
    // on a filesystem with weaker readdir guarantees (look again), or someone (a temp cleaner)
    // deleted the head. Then the key is free; writing re-creates its directory, which can only
    // replace an empty one, so a wrong guess here only costs a conflict.
    if (attempt >= MAX_EMPTY_LISTINGS) return ABSENT;
  }
}

/** Options of {@link HeadStore}. */
export interface HeadStoreOptions {
  readonly root: string;
  readonly fsync: boolean;
}

/** Changes key heads under one root directory. */
export class HeadStore {
  readonly #root: string;
  readonly #fsync: boolean;

  constructor(options: HeadStoreOptions) {
    this.#root = options.root;
    this.#fsync = options.fsync;
  }

  /**
   * Replace `head` by `next` (as version `head.version + 1`) and return the new head, unless
   * `head` is no longer the key's head (another process changed it first): then `undefined`.
   * With `durable` (a new fence) and the `fsync` option, the directory is synced before returning.
   */
  async swap(
    keyDir: string,
    key: string,
    head: Head,
    next: LockRecord,
    durable: boolean,
  ): Promise<Head | undefined> {
    if (head.name === undefined) {
      await this.#createKeyDir(keyDir, key);
      return undefined; // the caller re-reads and decides on the real head
    }
    const name = encodeHead(head.version + 1n, next);
    const oldToken = head.record.state === 'held' ? head.record.token : undefined;
    const newToken = next.state === 'held' ? next.token : undefined;
    const sideFileNeeded = newToken?.kind === 'digest' && !sameDigest(oldToken, newToken);
    if (sideFileNeeded) await this.#writeTokenFile(keyDir, newToken);
    try {
      await rename(join(keyDir, head.name), join(keyDir, name));
    } catch (error) {
      if (sideFileNeeded) await removeTokenFile(keyDir, newToken);
      if (hasCode(error, 'ENOENT')) return undefined;
      throw toLockError(error, 'update lock record');
    }
    if (durable && this.#fsync) await syncDir(keyDir);
    if (oldToken?.kind === 'digest' && !sameDigest(oldToken, newToken)) {
      await removeTokenFile(keyDir, oldToken);
    }
    return { version: head.version + 1n, record: next, name };
  }

  /** The full text of a stored token, or `undefined` if its side file is gone (the head moved). */
  async tokenText(keyDir: string, token: StoredToken): Promise<string | undefined> {
    if (token.kind === 'inline') return token.text;
    try {
      return await readFile(tokenFilePath(keyDir, token.digest), 'utf8');
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return undefined;
      throw toLockError(error, 'read lock token');
    }
  }

  /** The original key of a key directory (the head file's content); `undefined` if it moved. */
  async keyOf(keyDir: string, head: Head): Promise<string | undefined> {
    if (head.name === undefined) return undefined;
    try {
      return await readFile(join(keyDir, head.name), 'utf8');
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return undefined;
      throw toLockError(error, 'read lock key');
    }
  }

  /** Make sure the key's directory exists (so that it can be watched). */
  async ensureKeyDir(keyDir: string, key: string): Promise<void> {
    if ((await readHead(keyDir)).name === undefined) await this.#createKeyDir(keyDir, key);
  }

  /**
   * Create the key's directory with its first head (`0.f`, content: the key) already inside:
   * built under a temporary name, then renamed into place, so no key directory is ever seen
   * without a head. Losing the rename to another process (ENOTEMPTY/EEXIST) is fine.
   */
  async #createKeyDir(keyDir: string, key: string): Promise<void> {
    let temp: string;
    try {
      temp = await mkdtemp(join(this.#root, TEMP_PREFIX));
    } catch (error) {
      if (!hasCode(error, 'ENOENT')) throw toLockError(error, 'create lock directory');
      try {
        await mkdir(this.#root, { recursive: true });
        temp = await mkdtemp(join(this.#root, TEMP_PREFIX));
      } catch (inner) {
        throw toLockError(inner, 'create lock directory');
      }
    }
    try {
      await writeFile(join(temp, encodeHead(0n, FREE)), key, 'utf8');
      await rename(temp, keyDir);
      if (this.#fsync) await syncDir(this.#root);
    } catch (error) {
      await rm(temp, { recursive: true, force: true }).catch(() => undefined);
      if (!hasCode(error, 'ENOTEMPTY') && !hasCode(error, 'EEXIST')) {
        throw toLockError(error, 'create lock directory');
      }
    }
  }

  async #writeTokenFile(keyDir: string, token: StoredToken & { kind: 'digest' }): Promise<void> {
    if (token.text === undefined) {
      throw new BackendUnavailableError('files backend: token text missing for a new holder');
    }
    try {
      await writeFile(tokenFilePath(keyDir, token.digest), token.text, {
        encoding: 'utf8',
        flag: 'wx',
      });
    } catch (error) {
      // Same digest, same token: a file left by an earlier attempt of this holder is as good.
      if (!hasCode(error, 'EEXIST')) throw toLockError(error, 'write lock token');
    }
  }
}

function sameDigest(a: StoredToken | undefined, b: StoredToken | undefined): boolean {
  return a?.kind === 'digest' && b?.kind === 'digest' && a.digest === b.digest;
}

/** Best effort: a leftover side file is a few bytes and harmless. */
async function removeTokenFile(keyDir: string, token: StoredToken): Promise<void> {
  if (token.kind !== 'digest') return;
  await unlink(tokenFilePath(keyDir, token.digest)).catch(() => undefined);
}

/** Make the directory's entries durable (a new head, or a new key directory). */
async function syncDir(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (error) {
    throw toLockError(error, 'sync lock directory');
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
