/**
 * Options of the files backend: defaults in one frozen object, validated eagerly.
 */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../../core/errors.js';
import { defaultLockDirectory } from './lock-directory.js';

/** Options of {@link filesBackend}. */
export interface FilesBackendOptions {
  /**
   * Directory holding the lock files; created (private to the current user) on first use. Every
   * process that should contend for the same locks must use the same directory, on a local
   * filesystem. It must be a directory only the current user can change — owned by it, not
   * writable by group or others, not a symlink, and below directories nobody else can change
   * (sticky ones like `/tmp` are fine) — else the first call rejects with a `LockDirectoryError`.
   * Fences survive as long as the directory does: do not let a temp cleaner delete it if the
   * resources you protect remember fences (the default under the temp dir or the session's
   * runtime dir is for locks whose fences need not outlive a reboot).
   * @default `$XDG_RUNTIME_DIR/distlock` when XDG_RUNTIME_DIR is set, else `<os.tmpdir()>/distlock-<uid>`
   */
  readonly dir?: string;
  /**
   * Share the lock directory with the members of its group, on purpose: it must then exist, be a
   * setgid directory writable by its group and not by others (`install -d -m 2770 -g GROUP DIR`),
   * and this process must belong to that group. Everything the backend creates in it is given the
   * group's access. Every member of the group can take, break and forge the locks in it: share it
   * only with users you trust as much as your own.
   * @default false
   */
  readonly shareWithGroup?: boolean;
  /**
   * How often a watched key is re-read, as the fallback for wake-ups `fs.watch` misses.
   * @default 250
   */
  readonly pollIntervalMs?: number;
  /**
   * Use `fs.watch` for wake-ups. Turn off on filesystems where it is unreliable (NFS, some
   * containers' bind mounts); polling then does all the work.
   * @default true
   */
  readonly watch?: boolean;
  /**
   * fsync the key's directory after issuing a fence, so fences keep increasing even after a power
   * loss. Off saves about one disk flush per acquire; fences still survive process restarts.
   * @default true
   */
  readonly fsync?: boolean;
}

/** Every default of {@link FilesBackendOptions}. */
export const FILES_DEFAULTS = Object.freeze({
  dir: defaultLockDirectory(),
  shareWithGroup: false,
  pollIntervalMs: 250,
  watch: true,
  fsync: true,
});

/** Options with every field present. */
export type ResolvedFilesOptions = {
  readonly [K in keyof FilesBackendOptions]-?: NonNullable<FilesBackendOptions[K]>;
};

function checkBoolean(option: string, value: unknown): void {
  if (typeof value !== 'boolean') {
    throw new InvalidArgumentError(option, `must be a boolean, got ${typeof value}`);
  }
}

/** Fill in defaults and reject bad values, naming the option. */
export function resolveFilesOptions(options: FilesBackendOptions): ResolvedFilesOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object');
  }
  const dir = options.dir ?? FILES_DEFAULTS.dir;
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new InvalidArgumentError('dir', 'must be a non-empty path');
  }
  if (dir.includes('\0')) throw new InvalidArgumentError('dir', 'must not contain NUL characters');
  const pollIntervalMs = options.pollIntervalMs ?? FILES_DEFAULTS.pollIntervalMs;
  if (
    typeof pollIntervalMs !== 'number' ||
    !Number.isInteger(pollIntervalMs) ||
    pollIntervalMs < 1 ||
    pollIntervalMs > 2_147_483_647
  ) {
    throw new InvalidArgumentError(
      'pollIntervalMs',
      `must be a positive integer number of milliseconds, got ${String(pollIntervalMs)}`,
    );
  }
  const watch = options.watch ?? FILES_DEFAULTS.watch;
  checkBoolean('watch', watch);
  const fsync = options.fsync ?? FILES_DEFAULTS.fsync;
  checkBoolean('fsync', fsync);
  const shareWithGroup = options.shareWithGroup ?? FILES_DEFAULTS.shareWithGroup;
  checkBoolean('shareWithGroup', shareWithGroup);
  // Resolved once so that a later process.chdir() cannot move the locks.
  return { dir: resolve(dir), pollIntervalMs, watch, fsync, shareWithGroup };
}
