/**
 * Compare-and-swap on a key's state with a single atomic filesystem operation: `rename()`.
 *
 * Every key directory has exactly one *head* file whose name is the key's state (`key-state.ts`).
 * To change the state, a process that read head `v-<inc>.<old>` renames it to `v+1-<inc>.<new>`
 * (having first written the new state's data file, if it needs one). Of all processes that read the
 * same head, exactly one rename succeeds: the others find the source name gone (ENOENT), a
 * conflict, and re-read. Taking over an expired lock is therefore decided by the filesystem: no
 * "is it stale? delete it! create mine!" window (the proper-lockfile race where two processes
 * both take over).
 *
 * Names are never reused, so a process that slept on an old head can never rename it: it no
 * longer exists. The version grows with every change, and the incarnation is random per key
 * directory, so not even a directory removed when its key was free and created again later
 * (`reaper.ts`) brings an old name back (no ABA). A process that read a head and then renames it
 * has therefore seen the latest state, whatever happened in between.
 *
 * Why not a per-key mutex file created with O_EXCL? A process that dies holding it leaves it
 * behind, and breaking a stale mutex has the same race again. Why keep the state in the name?
 * Creating an inode is the slowest metadata operation there is (about 0.15 to 2 ms here, against
 * tens of microseconds for a rename): the mutex's states fit in a name, so acquiring and releasing
 * a mutex creates nothing. Readers, semaphores and intents need a data file per change.
 *
 * A crash leaves nothing half-done (a rename happened or it did not); at most an ignored `.tmp-*`
 * directory or an unreferenced data file is left behind, removed with the key directory.
 */
import { mkdtemp, open, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendUnavailableError } from '../../core/errors.js';
import { hasCode, toLockError } from './fs-errors.js';
import {
  decodeData,
  decodeHead,
  encodeHead,
  newIncarnation,
  NEW_KEY,
  type HeadName,
  type KeyState,
} from './key-state.js';
import type { EntryModes } from './lock-directory.js';
import { TEMP_PREFIX } from './paths.js';

/** Listings that may show no head before a key directory counts as emptied (see read). */
const MAX_EMPTY_LISTINGS = 3;

/** Times a head may be seen with its data file missing before the data counts as lost. */
const MAX_MISSING_DATA = 3;

/** Re-reads allowed when the head keeps moving while its data file is read. */
const MAX_READS = 100;

/** A key's state as read (or written) at one moment. */
export interface Snapshot {
  readonly keyDir: string;
  /** `undefined` while the key has no directory (or an emptied one): such a key is free. */
  readonly head: HeadName | undefined;
  readonly state: KeyState;
}

/** Options of {@link HeadStore}. */
export interface HeadStoreOptions {
  readonly root: string;
  readonly fsync: boolean;
  readonly modes: EntryModes;
  /** Makes sure the root exists and is safe (again: someone may have deleted it). */
  readonly prepareRoot: () => Promise<void>;
}

/** Reads and changes key heads under one root directory. */
export class HeadStore {
  readonly #root: string;
  readonly #fsync: boolean;
  readonly #modes: EntryModes;
  readonly #prepareRoot: () => Promise<void>;

  constructor(options: HeadStoreOptions) {
    this.#root = options.root;
    this.#fsync = options.fsync;
    this.#modes = options.modes;
    this.#prepareRoot = options.prepareRoot;
  }

  /** The state of the key stored in `keyDir`. */
  async read(keyDir: string): Promise<Snapshot> {
    let empty = 0;
    let missing = 0;
    let lastMissing: string | undefined;
    for (let reads = 0; reads < MAX_READS; reads++) {
      const names = await listKeyDir(keyDir);
      if (names === undefined) return { keyDir, head: undefined, state: NEW_KEY };
      const head = newestHead(names);
      if (!head) {
        // A key directory is created with its head inside, so a listing without one raced a
        // rename on a filesystem with weaker readdir guarantees (look again), or the directory
        // is being removed, or someone deleted the head. Then the key is free; writing creates
        // the directory again, so a wrong guess here only costs a conflict.
        if (++empty >= MAX_EMPTY_LISTINGS) return { keyDir, head: undefined, state: NEW_KEY };
        continue;
      }
      if (head.state) return { keyDir, head, state: head.state };
      const state = await this.#data(keyDir, head);
      if (state) return { keyDir, head, state };
      // The data file is gone: the head moved on (look again), or, if the same head stays, its
      // data was lost (a crash before it reached the disk): then nobody holds the key, and its
      // last fence is still in the name.
      missing = head.name === lastMissing ? missing + 1 : 1;
      lastMissing = head.name;
      if (missing >= MAX_MISSING_DATA) {
        return { keyDir, head, state: { ...NEW_KEY, lastFence: head.lastFence, mixed: true } };
      }
    }
    throw new BackendUnavailableError('files backend: a lock record changed too often to read');
  }

  /** The original key of a key directory (the head file's content); `undefined` if it moved. */
  async keyOf(snapshot: Snapshot): Promise<string | undefined> {
    if (!snapshot.head) return undefined;
    try {
      return await readFile(join(snapshot.keyDir, snapshot.head.name), 'utf8');
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return undefined;
      throw toLockError(error, 'read lock key');
    }
  }

  /**
   * Replace the snapshot's head by one recording `next` and return the new snapshot, unless the
   * head is no longer the key's head (another process changed it first): then `undefined`.
   * With `durable` (a new fence) and the `fsync` option, the directory is synced before returning.
   * A snapshot without a head is first given a key directory (see {@link createKeyDir}).
   */
  async swap(
    snapshot: Snapshot & { readonly head: HeadName },
    next: KeyState,
    durable: boolean,
  ): Promise<Snapshot | undefined> {
    const { keyDir, head } = snapshot;
    // A legacy head gets an incarnation when it is first rewritten.
    const { head: written, data } = encodeHead(
      head.version + 1n,
      head.incarnation ?? newIncarnation(),
      next,
    );
    const dataPath = written.dataFile && join(keyDir, written.dataFile);
    if (dataPath) {
      try {
        await writeFile(dataPath, data ?? '', { encoding: 'utf8', flag: 'wx' });
        await this.#modes.file(dataPath);
      } catch (error) {
        await unlink(dataPath).catch(() => undefined);
        // The key directory was removed under us: a conflict like any other.
        if (hasCode(error, 'ENOENT')) return undefined;
        throw toLockError(error, 'write lock state');
      }
    }
    try {
      await rename(join(keyDir, head.name), join(keyDir, written.name));
    } catch (error) {
      if (dataPath) await unlink(dataPath).catch(() => undefined);
      if (hasCode(error, 'ENOENT')) return undefined;
      throw toLockError(error, 'update lock state');
    }
    if (durable && this.#fsync) await syncDir(keyDir);
    // Best effort: a data file left behind is removed with its directory.
    if (head.dataFile) await unlink(join(keyDir, head.dataFile)).catch(() => undefined);
    return { keyDir, head: written, state: next };
  }

  /**
   * Create the key's directory with its first head (`0-<inc>.n`, content: the key) already inside:
   * built under a temporary name, then renamed into place, so no key directory is ever seen
   * without a head. Returns the new key's snapshot, or `undefined` if another process created
   * the directory first (read it). A directory left without a head (its removal was interrupted)
   * is cleared first.
   */
  async createKeyDir(keyDir: string, key: string): Promise<Snapshot | undefined> {
    const temp = await this.#tempDir();
    let placed = false;
    try {
      const { head } = encodeHead(0n, newIncarnation(), NEW_KEY);
      const headPath = join(temp, head.name);
      await writeFile(headPath, key, 'utf8');
      await this.#modes.file(headPath);
      await this.#modes.directory(temp);
      for (let attempt = 0; !placed; attempt++) {
        try {
          await rename(temp, keyDir);
          placed = true;
        } catch (error) {
          if (!hasCode(error, 'ENOTEMPTY') && !hasCode(error, 'EEXIST')) throw error;
          if (attempt > 0 || !(await this.clearHeadless(keyDir))) return undefined;
        }
      }
      if (this.#fsync) await syncDir(this.#root);
      return { keyDir, head, state: NEW_KEY };
    } catch (error) {
      throw toLockError(error, 'create lock directory');
    } finally {
      if (!placed) await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * Empty a key directory that has no head (what an interrupted removal, a crash while writing a
   * data file or a temp cleaner leaves): everything in it is garbage. Returns false, touching
   * nothing, if it has a head after all.
   */
  async clearHeadless(keyDir: string): Promise<boolean> {
    let names: string[];
    try {
      names = await readdir(keyDir);
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return true;
      throw toLockError(error, 'read lock directory');
    }
    if (names.some((name) => decodeHead(name) !== undefined)) return false;
    await Promise.all(
      names.map((name) => rm(join(keyDir, name), { recursive: true, force: true })),
    );
    return true;
  }

  /** A new temporary directory under the root (re-creating the root if it was deleted). */
  async #tempDir(): Promise<string> {
    try {
      return await mkdtemp(join(this.#root, TEMP_PREFIX));
    } catch (error) {
      if (!hasCode(error, 'ENOENT')) throw toLockError(error, 'create lock directory');
    }
    await this.#prepareRoot();
    try {
      return await mkdtemp(join(this.#root, TEMP_PREFIX));
    } catch (error) {
      throw toLockError(error, 'create lock directory');
    }
  }

  /** The state in the head's data file; `undefined` if the file is gone or unreadable. */
  async #data(keyDir: string, head: HeadName): Promise<KeyState | undefined> {
    if (!head.dataFile) return undefined;
    let content: string;
    try {
      content = await readFile(join(keyDir, head.dataFile), 'utf8');
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return undefined;
      throw toLockError(error, 'read lock state');
    }
    return decodeData(content, head.lastFence ?? 0n);
  }
}

/** The names in a key directory, or `undefined` if there is no such directory. */
async function listKeyDir(keyDir: string): Promise<string[] | undefined> {
  try {
    return await readdir(keyDir);
  } catch (error) {
    if (hasCode(error, 'ENOENT') || hasCode(error, 'ENOTDIR')) return undefined;
    throw toLockError(error, 'read lock directory');
  }
}

/** The newest head among a key directory's names, if any. */
function newestHead(names: readonly string[]): HeadName | undefined {
  let newest: HeadName | undefined;
  for (const name of names) {
    const head = decodeHead(name);
    // A listing taken during a rename may show both names: the current layout is newer than the
    // legacy one, and a higher version newer than a lower one.
    if (head && (newest === undefined || newer(head, newest))) newest = head;
  }
  return newest;
}

function newer(a: HeadName, b: HeadName): boolean {
  const aCurrent = a.incarnation !== undefined;
  const bCurrent = b.incarnation !== undefined;
  if (aCurrent !== bCurrent) return aCurrent;
  return a.version > b.version;
}

/** Make a directory's entries durable (a new head, a new key directory, the fence floor). */
export async function syncDir(path: string): Promise<void> {
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
