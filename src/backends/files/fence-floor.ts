/**
 * The fence floor: one number per lock directory, at least every fence ever issued by a key
 * directory that has since been removed. It is what lets the backend remove the directories of
 * free keys (bounded state) while fences stay strictly increasing per key.
 *
 * Why fences strictly increase per key:
 * 1. Within one key directory, every grant takes `lastFence + 1` and records it as the new
 *    `lastFence` in the same rename that records the holder; renames of one directory's head are
 *    totally ordered and each starts from the state the previous one wrote (`head-store.ts`).
 * 2. A key directory is removed only by the reaper, which first raises the floor to at least the
 *    directory's `lastFence` (durably: the floor's directory is synced), then removes the free head
 *    with `unlink` — itself a compare-and-swap: it fails if the head changed since it was read.
 *    Once the head is gone, nothing can be granted in that directory any more.
 * 3. A new key directory starts without a fence (`.n`). Its first grant reads the floor *after*
 *    reading that new head, hence after the old directory's removal, hence after the floor was
 *    raised above every fence of the old directory; it takes `floor + 1`.
 * So every fence of a key is greater than every earlier one, across releases, expiries, restarts
 * and removals of its directory; a power loss cannot undo a fence either, with `fsync`.
 *
 * Legacy lock directories (fences were per-key versions) need no migration: a legacy head's
 * version is at least every fence it issued, so its first grant here takes the larger of that
 * version and the floor (read after the head, as for a new directory: an older version still
 * running may have created it anew), and the reaper raises the floor above it before removing
 * such a directory too. Older versions do not know the floor: their own fences may go back after
 * a removal, so do not run two versions on one lock directory if fences matter.
 *
 * The floor is a file in `<dir>/.fence/` whose *name* is the number, changed by renaming it (the
 * same compare-and-swap as the heads), and only by removals: acquiring and releasing never touch
 * it, except the first grant of a new key directory, which reads it.
 */
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendUnavailableError } from '../../core/errors.js';
import { hasCode, toLockError } from './fs-errors.js';
import { syncDir } from './head-store.js';
import type { EntryModes } from './lock-directory.js';
import { FENCE_DIR, TEMP_PREFIX } from './paths.js';

/** Compare-and-swap rounds before giving up; each lost round means another process raised it. */
const MAX_RAISE_ATTEMPTS = 100;

const NUMBER = /^(0|[1-9][0-9]*)$/;

/** Options of {@link FenceFloor}. */
export interface FenceFloorOptions {
  readonly root: string;
  readonly fsync: boolean;
  readonly modes: EntryModes;
}

/** The fence floor of one lock directory. */
export class FenceFloor {
  readonly #root: string;
  readonly #dir: string;
  readonly #fsync: boolean;
  readonly #modes: EntryModes;

  constructor(options: FenceFloorOptions) {
    this.#root = options.root;
    this.#dir = join(options.root, FENCE_DIR);
    this.#fsync = options.fsync;
    this.#modes = options.modes;
  }

  /** The floor now (0 before anything was ever removed). */
  async read(): Promise<bigint> {
    return (await this.#current())?.value ?? 0n;
  }

  /** Make the floor at least `value`, durably (with `fsync`), before returning. */
  async raise(value: bigint): Promise<void> {
    for (let attempt = 0; attempt < MAX_RAISE_ATTEMPTS; attempt++) {
      const current = await this.#current();
      if (current && current.value >= value) {
        // Another process may have raised it a moment ago and not synced it yet.
        if (this.#fsync) await syncDir(this.#dir);
        return;
      }
      if (current ? await this.#move(current.name, value) : await this.#create(value)) {
        if (this.#fsync) await syncDir(this.#dir);
        return;
      }
    }
    throw new BackendUnavailableError('files backend: the fence floor changed too often to raise');
  }

  /** The floor's file, or `undefined` if there is none yet. */
  async #current(): Promise<{ name: string; value: bigint } | undefined> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return undefined;
      throw toLockError(error, 'read the fence floor');
    }
    let best: { name: string; value: bigint } | undefined;
    for (const name of names) {
      if (!NUMBER.test(name)) continue;
      const value = BigInt(name);
      if (!best || value > best.value) best = { name, value };
    }
    return best;
  }

  /** Rename the floor's file to `value`; false if another process moved it first. */
  async #move(name: string, value: bigint): Promise<boolean> {
    try {
      await rename(join(this.#dir, name), join(this.#dir, String(value)));
      return true;
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return false;
      throw toLockError(error, 'raise the fence floor');
    }
  }

  /**
   * Create the floor's directory with its file inside, atomically (a temporary directory renamed
   * into place, as key directories are); false if another process created it first.
   */
  async #create(value: bigint): Promise<boolean> {
    let temp: string | undefined;
    try {
      temp = await mkdtemp(join(this.#root, TEMP_PREFIX));
      const file = join(temp, String(value));
      await writeFile(file, '');
      await this.#modes.file(file);
      await this.#modes.directory(temp);
      await rename(temp, this.#dir);
      if (this.#fsync) await syncDir(this.#root);
      return true;
    } catch (error) {
      if (hasCode(error, 'ENOTEMPTY') || hasCode(error, 'EEXIST')) return false;
      throw toLockError(error, 'create the fence floor');
    } finally {
      if (temp) await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
