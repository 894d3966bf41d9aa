/**
 * The file guard: a value in a directory whose every access is decided by one `rename()`, the
 * compare-and-swap of a local filesystem, so that processes of one host (and the paused, the
 * killed and the resumed among them) never both pass a check and then both write.
 *
 * The directory holds one *head*: an empty file whose name is the state,
 * `<version>.<fence>.<sharedFence>.<data id>` (`-` for none), and immutable data files `d.<id>`
 * holding values. An access reads the head, checks its fence against the head's (`rules.ts`),
 * and renames the head to version + 1 with the fences raised (and, for a write, a new data file
 * written beforehand). Of all accesses that read one head, only one rename succeeds: the others
 * find the old name gone and start again, re-checking against the new head. Versions only grow,
 * so no name ever comes back, and a process that slept on an old head can never rename it. (A
 * check followed by a plain "write a temp file and rename it over the value" is *not* safe: two
 * processes can both pass the check, and the paused one's rename lands last.)
 *
 * The directory is created with its first head inside (a temporary directory renamed into
 * place), so it is never without one. A writer deletes the data file its rename replaced; data
 * files left by killed or outrun writers are swept by a later access (see `sweepOrphans`).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import {
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BackendError, BackendUnavailableError, InvalidArgumentError } from '../core/errors.js';
import {
  accessOf,
  afterAccess,
  outranking,
  UNFENCED,
  type FenceHolder,
  type FenceState,
} from './rules.js';
import { StaleFenceError } from './stale-fence-error.js';

/** Options of {@link fileFence}. */
export interface FileFenceOptions {
  /**
   * fsync each value before its head names it, and the directory after a write, so that an
   * acknowledged write survives a power loss. Fence-only changes (reads) are not synced: after a
   * power loss no stale holder is left to refuse.
   * @default true
   */
  readonly fsync?: boolean;
}

/** A value in a directory that refuses stale holders. Made by {@link fileFence}. */
export interface FileFencedValue {
  /** The guarded directory. */
  readonly path: string;
  /**
   * Check `holder`'s fence, record it, and return the value (`null` if none was written).
   * @throws StaleFenceError if a newer holder has accessed the resource (nothing recorded).
   */
  read(holder: FenceHolder): Promise<string | null>;
  /**
   * Check `holder`'s fence, record it, and store `value`, in one step.
   * @throws StaleFenceError if a newer holder has accessed the resource (nothing written).
   */
  write(value: string, holder: FenceHolder): Promise<void>;
  /**
   * Check and record `holder`'s fence without reading or writing the value.
   * @throws StaleFenceError if a newer holder has accessed the resource.
   */
  register(holder: FenceHolder): Promise<void>;
  /**
   * The value now, without checking or recording a fence: for reports and tools, never for a
   * holder's read-modify-write (a stale holder could then write after a newer holder's peek).
   */
  peek(): Promise<string | null>;
  /** The highest fences the resource has seen (no check). */
  fences(): Promise<FenceState>;
  /**
   * {@link FileFencedValue.fences}, without yielding: for a process that must look while its
   * event loop is blocked (a test that simulates a stop-the-world pause).
   */
  fencesSync(): FenceState;
}

/** A head: its file name and what it says. */
interface Head {
  readonly name: string;
  readonly version: bigint;
  readonly state: FenceState;
  readonly dataId: string | null;
}

const GENESIS = '0.-.-.-';
const DATA_PREFIX = 'd.';
/** File timestamps are coarse (a clock tick behind); see sweepOrphans. */
const TIMESTAMP_MARGIN_MS = 5_000;
/** Sweep orphans when a listing shows more data files than this (one per in-flight write). */
const SWEEP_ABOVE = 16;

/**
 * Guard the directory `path` (created with its parents if missing) with fences.
 *
 * @example
 * ```ts
 * const account = fileFence('/var/lib/app/accounts/42');
 * await locks.withLock('account:42', async (lease) => {
 *   const data = JSON.parse((await account.read(lease)) ?? '{}'); // registers lease.fence
 *   await account.write(JSON.stringify({ ...data, paid: true }), lease);
 * });
 * ```
 */
export function fileFence(path: string, options: FileFenceOptions = {}): FileFencedValue {
  if (typeof path !== 'string' || path === '') {
    throw new InvalidArgumentError('path', 'must be a non-empty string');
  }
  const fsync = options.fsync ?? true;
  if (typeof fsync !== 'boolean') throw new InvalidArgumentError('fsync', 'must be a boolean');

  /** One access: returns the value read when `read`. */
  const access = async (
    holder: FenceHolder,
    op: 'read' | 'write' | 'register',
    value?: string,
  ): Promise<string | null> => {
    const checked = accessOf(holder);
    let missing: string | undefined;
    for (;;) {
      const readAt = Date.now();
      const { head, names } = await readHead(path);
      const higher = outranking(head.state, checked);
      if (higher !== null) throw new StaleFenceError(path, checked.fence, higher);
      const next = afterAccess(head.state, checked);
      // Read before the rename: data files never change, so this is the value the head names.
      const current = op === 'read' ? await readData(path, head.dataId) : null;
      if (current === undefined) {
        // Replaced by a write meanwhile (look again), unless the head itself stays without it.
        if (missing === head.name) throw fsError({ code: 'ENOENT' }, 'read the value of', path);
        missing = head.name;
        continue;
      }
      const dataId = op === 'write' ? await writeData(path, value ?? '', fsync) : head.dataId;
      if (op !== 'write' && sameState(head.state, next)) return current;
      if (!(await renameHead(path, head, next, dataId))) {
        // Lost to another access: start over with a new data file (see sweepOrphans).
        if (op === 'write') await removeData(path, dataId);
        continue;
      }
      if (op === 'write') {
        if (fsync) await syncDir(path);
        if (head.dataId !== null) await removeData(path, head.dataId);
      }
      if (names.length > SWEEP_ABOVE) await sweepOrphans(path, names, dataId, readAt);
      return current;
    }
  };

  return {
    path,
    read: (holder) => access(holder, 'read'),
    write: async (value, holder) => {
      if (typeof value !== 'string') throw new InvalidArgumentError('value', 'must be a string');
      await access(holder, 'write', value);
    },
    register: async (holder) => {
      await access(holder, 'register');
    },
    async peek() {
      for (;;) {
        const value = await readData(path, (await readHead(path)).head.dataId);
        if (value !== undefined) return value; // else replaced meanwhile: look again
      }
    },
    fences: async () => (await readHead(path)).head.state,
    fencesSync() {
      try {
        return newestHead(readdirSync(path))?.state ?? UNFENCED;
      } catch (error) {
        if (hasCode(error, 'ENOENT')) return UNFENCED;
        throw fsError(error, 'read', path);
      }
    },
  };
}

/** The resource's head and listing, creating the directory (with its first head) if missing. */
async function readHead(path: string): Promise<{ head: Head; names: string[] }> {
  for (;;) {
    let names: string[];
    try {
      names = await readdir(path);
    } catch (error) {
      if (!hasCode(error, 'ENOENT')) throw fsError(error, 'read', path);
      await createResource(path);
      continue;
    }
    const head = newestHead(names);
    if (head) return { head, names };
    // A directory always holds a head; a listing without one raced a rename (look again), or
    // the directory was emptied by hand (then a new first head can replace the empty directory).
    await createResource(path);
  }
}

function newestHead(names: readonly string[]): Head | undefined {
  let newest: Head | undefined;
  for (const name of names) {
    const head = decodeHead(name);
    // A listing taken during a rename may show both names; the higher version is the newer.
    if (head && (newest === undefined || head.version > newest.version)) newest = head;
  }
  return newest;
}

function decodeHead(name: string): Head | undefined {
  const parts = name.split('.');
  if (parts.length !== 4 || !/^\d+$/.test(parts[0]!)) return undefined;
  const [version, fence, sharedFence, dataId] = parts as [string, string, string, string];
  const number = (text: string) => (text === '-' ? null : BigInt(text));
  return {
    name,
    version: BigInt(version),
    state: { fence: number(fence), sharedFence: number(sharedFence) },
    dataId: dataId === '-' ? null : dataId,
  };
}

function encodeHead(version: bigint, state: FenceState, dataId: string | null): string {
  const text = (value: bigint | string | null) => (value === null ? '-' : String(value));
  return [version, state.fence, state.sharedFence, dataId].map(text).join('.');
}

function sameState(a: FenceState, b: FenceState): boolean {
  return a.fence === b.fence && a.sharedFence === b.sharedFence;
}

/** Rename `head` to its successor; false if another access renamed it first. */
async function renameHead(
  path: string,
  head: Head,
  state: FenceState,
  dataId: string | null,
): Promise<boolean> {
  const next = encodeHead(head.version + 1n, state, dataId);
  try {
    await rename(join(path, head.name), join(path, next));
    return true;
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return false;
    throw fsError(error, 'update', path);
  }
}

/**
 * Create the directory with its first head inside, atomically: a temporary directory renamed
 * into place, which fails harmlessly if another process created it first (renaming a directory
 * onto a non-empty one fails).
 */
async function createResource(path: string): Promise<void> {
  const parent = dirname(path);
  try {
    await mkdir(parent, { recursive: true });
    const temporary = await mkdtemp(join(parent, `.${basename(path)}.new-`));
    await writeFile(join(temporary, GENESIS), '');
    try {
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { recursive: true, force: true });
      if (!hasCode(error, 'ENOTEMPTY') && !hasCode(error, 'EEXIST')) throw error;
    }
  } catch (error) {
    throw fsError(error, 'create', path);
  }
}

/** The value of data file `id` (`null` for none), or `undefined` if it is gone. */
async function readData(path: string, id: string | null): Promise<string | null | undefined> {
  if (id === null) return null;
  try {
    return await readFile(join(path, DATA_PREFIX + id), 'utf8');
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return undefined;
    throw fsError(error, 'read', path);
  }
}

async function writeData(path: string, value: string, fsync: boolean): Promise<string> {
  const id = randomBytes(8).toString('hex');
  try {
    const file = await open(join(path, DATA_PREFIX + id), 'wx');
    try {
      await file.writeFile(value);
      if (fsync) await file.sync();
    } finally {
      await file.close();
    }
  } catch (error) {
    throw fsError(error, 'write', path);
  }
  return id;
}

async function removeData(path: string, id: string | null): Promise<void> {
  if (id !== null) await unlink(join(path, DATA_PREFIX + id)).catch(() => undefined);
}

/**
 * Delete the data files that no head can name any more: after this access renamed the head it read
 * at `readAt`, every write that wrote its data file before then read an older head, so its rename
 * fails and it starts over with a new file. Only files older than `readAt` (less a margin for
 * coarse file timestamps) go; files of writes still in flight are newer.
 */
async function sweepOrphans(
  path: string,
  names: readonly string[],
  keep: string | null,
  readAt: number,
): Promise<void> {
  const before = readAt - TIMESTAMP_MARGIN_MS;
  for (const name of names) {
    if (!name.startsWith(DATA_PREFIX) || name === DATA_PREFIX + keep) continue;
    const file = join(path, name);
    const info = await stat(file).catch(() => undefined);
    if (info && info.mtimeMs < before) await unlink(file).catch(() => undefined);
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function hasCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

/** Errors a later attempt may not hit: out of descriptors, a busy or full disk. */
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'EIO', 'ENOSPC']);

function fsError(error: unknown, action: string, path: string) {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
  const message = `file fence: cannot ${action} "${path}" (${code})`;
  return TRANSIENT.has(code)
    ? new BackendUnavailableError(message, { cause: error })
    : new BackendError(message, { cause: error });
}
