/**
 * The lock directory (the root every key lives under) must be one that no other user can change:
 * anyone who can rename or delete entries in it can take a held lock from under its holder, or
 * reset a key's fences. Before first use the backend creates the root if it is missing (without
 * `mkdir -p`, which Node 20 turns into an endless loop on some paths, e.g. under `/proc`) and
 * checks it, once per backend:
 *
 * - the root is a real directory (not a symlink), owned by the current user, writable by nobody
 *   else (no group or world write bit);
 * - every directory above it is owned by root or the current user and writable by nobody else
 *   unless it is sticky (like `/tmp`: others cannot rename what they do not own), and every
 *   symlink on the way is owned by root or the current user — so nobody can move the root away
 *   and put their own in its place.
 *
 * A root shared by several users on purpose (`shareWithGroup`) must instead be a setgid directory
 * writable by its group (and not by others) that the current user belongs to; every member of the
 * group can then take, break and forge locks in it. On Windows, where these modes do not exist,
 * only "is a directory" is checked.
 */
import { chmod, lstat, mkdir, realpath } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, isAbsolute, join, parse } from 'node:path';
import { InvalidArgumentError } from '../../core/errors.js';
import { hasCode, isTransient, toLockError } from './fs-errors.js';

/** What is wrong with a lock directory. */
export type LockDirectoryProblem =
  /** It cannot be created or read (a missing parent, no permission, a read-only or odd filesystem). */
  | 'unusable'
  /** Something other than a directory is in its place. */
  | 'not-a-directory'
  /** It is a symlink, which its owner could point elsewhere at any time. */
  | 'symlink'
  /** It, or a directory or symlink above it, belongs to another user. */
  | 'foreign-owner'
  /** It, or a directory above it that is not sticky, is writable by other users. */
  | 'writable-by-others'
  /** `shareWithGroup`: it is not a setgid directory of a group this process belongs to. */
  | 'not-group-shared';

/**
 * The lock directory cannot be used, or could be tampered with by another user. A configuration
 * error (`INVALID_ARGUMENT`, `option: 'dir'`, not retryable): fix the directory or choose another.
 */
export class LockDirectoryError extends InvalidArgumentError {
  /** The directory at fault (the lock directory or one above it). */
  readonly path: string;
  readonly problem: LockDirectoryProblem;

  constructor(
    path: string,
    problem: LockDirectoryProblem,
    detail: string,
    options: { cause?: unknown } = {},
  ) {
    super('dir', `${detail} (${path})`, options);
    this.path = path;
    this.problem = problem;
  }
}

/** Options of {@link prepareLockDirectory}. */
export interface LockDirectoryOptions {
  readonly shareWithGroup: boolean;
}

/** The current user and groups, or `undefined` where the platform has no POSIX ids. */
function currentIds(): { uid: number; groups: Set<number> } | undefined {
  if (typeof process.geteuid !== 'function' || typeof process.getegid !== 'function') {
    return undefined;
  }
  const groups = new Set(process.getgroups?.() ?? []);
  groups.add(process.getegid());
  return { uid: process.geteuid(), groups };
}

/** Create `dir` (and missing parents) if needed, then check that nobody else can tamper with it. */
export async function prepareLockDirectory(
  dir: string,
  options: LockDirectoryOptions,
): Promise<void> {
  const ids = currentIds();
  await createMissing(dir, options);
  const stats = await lstatOrFail(dir);
  if (stats.isSymbolicLink()) {
    throw new LockDirectoryError(dir, 'symlink', 'the lock directory must not be a symlink');
  }
  if (!stats.isDirectory()) {
    throw new LockDirectoryError(dir, 'not-a-directory', 'the lock directory is not a directory');
  }
  if (!ids) return;
  if (options.shareWithGroup) checkGroupShared(dir, stats, ids);
  else checkPrivate(dir, stats, ids);
  await checkAncestors(dir, ids);
  const real = await realpathOrFail(dir);
  if (real !== dir) await checkAncestors(real, ids);
}

function checkPrivate(
  dir: string,
  stats: { uid: number; mode: number },
  ids: { uid: number },
): void {
  if (stats.uid !== ids.uid) {
    throw new LockDirectoryError(
      dir,
      'foreign-owner',
      `the lock directory belongs to user ${stats.uid}, not to this process's user ${ids.uid}; ` +
        'choose another directory (or see the shareWithGroup option)',
    );
  }
  if ((stats.mode & 0o022) !== 0) {
    throw new LockDirectoryError(
      dir,
      'writable-by-others',
      `the lock directory is writable by other users (mode ${octal(stats.mode)}); ` +
        `run chmod go-w on it, or see the shareWithGroup option`,
    );
  }
}

function checkGroupShared(
  dir: string,
  stats: { gid: number; mode: number },
  ids: { uid: number; groups: Set<number> },
): void {
  if ((stats.mode & 0o002) !== 0) {
    throw new LockDirectoryError(
      dir,
      'writable-by-others',
      `the shared lock directory is writable by every user (mode ${octal(stats.mode)})`,
    );
  }
  const member = ids.uid === 0 || ids.groups.has(stats.gid);
  if ((stats.mode & 0o2070) !== 0o2070 || !member) {
    throw new LockDirectoryError(
      dir,
      'not-group-shared',
      `a lock directory shared with a group must be setgid and group-writable (mode 2770) and ` +
        `belong to a group of this process (mode ${octal(stats.mode)}, group ${stats.gid})`,
    );
  }
}

/** Every directory and symlink above `dir` must be safe from other users (see the module doc). */
async function checkAncestors(dir: string, ids: { uid: number }): Promise<void> {
  for (let path = dirname(dir); ; path = dirname(path)) {
    const stats = await lstatOrFail(path);
    if (stats.uid !== 0 && stats.uid !== ids.uid) {
      throw new LockDirectoryError(
        path,
        'foreign-owner',
        `a directory above the lock directory belongs to user ${stats.uid}, who could replace ` +
          'the lock directory',
      );
    }
    const sticky = (stats.mode & 0o1000) !== 0;
    if (stats.isDirectory() && (stats.mode & 0o022) !== 0 && !sticky) {
      throw new LockDirectoryError(
        path,
        'writable-by-others',
        `a directory above the lock directory is writable by other users and not sticky ` +
          `(mode ${octal(stats.mode)}): they could replace the lock directory`,
      );
    }
    if (path === parse(path).root) return;
  }
}

/**
 * Create `dir` and its missing parents one level at a time (bounded by the path's depth, unlike
 * Node 20's recursive `mkdir`, which never returns for a path under `/proc`). The lock directory
 * itself is created private (0700); a shared one must be set up by its administrator.
 */
async function createMissing(dir: string, options: LockDirectoryOptions): Promise<void> {
  const missing: string[] = [];
  for (let path = dir; ; path = dirname(path)) {
    try {
      await lstat(path);
      break;
    } catch (error) {
      if (!hasCode(error, 'ENOENT')) throw unusable(path, error);
    }
    if (options.shareWithGroup && path === dir) {
      throw new LockDirectoryError(
        dir,
        'unusable',
        'the shared lock directory does not exist; create it with its group: ' +
          `install -d -m 2770 -g GROUP ${dir}`,
      );
    }
    missing.push(path);
    if (path === parse(path).root) break;
  }
  for (const path of missing.reverse()) {
    try {
      await mkdir(path, { mode: path === dir ? 0o700 : 0o755 });
    } catch (error) {
      if (!hasCode(error, 'EEXIST')) throw unusable(path, error);
    }
  }
}

async function lstatOrFail(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    throw unusable(path, error);
  }
}

async function realpathOrFail(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    throw unusable(path, error);
  }
}

/** A transient error stays retryable; anything else means the directory cannot be used. */
function unusable(path: string, error: unknown) {
  if (isTransient(error)) return toLockError(error, 'prepare the lock directory');
  const code = (error as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
  return new LockDirectoryError(
    path,
    'unusable',
    `the lock directory cannot be created or used (${code})`,
    { cause: error },
  );
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * The default lock directory: `$XDG_RUNTIME_DIR/distlock` when that is set (a per-user directory
 * the login session owns), else `<os temp dir>/distlock-<uid>` (`distlock-<user name>` where there
 * are no uids). Either way private to the current user.
 */
export function defaultLockDirectory(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime && isAbsolute(runtime)) return join(runtime, 'distlock');
  const user = process.geteuid?.() ?? userInfo().username.replace(/[^A-Za-z0-9._-]/g, '_');
  return join(tmpdir(), `distlock-${user}`);
}

/**
 * Gives what the backend creates inside a shared lock directory the group's access (a private
 * one needs nothing: the umask's modes are the owner's). Temporary directories are created 0700
 * and the umask may hide files from the group; in a setgid root they already have its group.
 */
export class EntryModes {
  readonly #shared: boolean;

  constructor(shareWithGroup: boolean) {
    this.#shared = shareWithGroup;
  }

  /** A directory the group's members must change too (a key directory, the fence floor). */
  async directory(path: string): Promise<void> {
    if (this.#shared) await chmod(path, 0o2770);
  }

  /** A file the group's members must read (a head, a data file). */
  async file(path: string): Promise<void> {
    if (this.#shared) await chmod(path, 0o640);
  }
}
