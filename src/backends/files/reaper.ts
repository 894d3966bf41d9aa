/**
 * Removing the directories of free keys, so that the lock directory holds the keys in use rather
 * than every key ever locked (a service that locks per order id would otherwise keep millions).
 *
 * - A key this backend left free (released, or its last intent withdrawn) is removed once it has
 *   stayed free for {@link REAP_AFTER_MS}, so a key locked again and again keeps its directory.
 *   `close()` removes the ones still waiting for that.
 * - What no process of this kind removes (keys whose holders died, keys freed by a process that
 *   exited without `close()`, legacy key directories) is found by a sweep of the whole directory:
 *   shortly after the backend is first used and then every {@link SWEEP_EVERY_MS}, any key
 *   directory unchanged for {@link SWEEP_IDLE_MS} with nothing live in it is removed.
 *
 * Removing is safe against every concurrent change (see `fence-floor.ts` for why fences survive
 * it): the floor is raised above the directory's last fence first, then the free head is removed
 * with `unlink`, which fails if anyone changed the head since it was read; only then is the
 * directory emptied and removed. A process that read the old head finds its rename failing and
 * reads again; a waiter whose `fs.watch` lost the directory falls back to polling until it is back.
 */
import { lstat, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FenceFloor } from './fence-floor.js';
import { hasCode } from './fs-errors.js';
import type { HeadStore, Snapshot } from './head-store.js';
import { isIdle, type HeadName } from './key-state.js';
import { isKeyDirName, TEMP_PREFIX } from './paths.js';

/** How long a key this backend freed stays free before its directory is removed. */
export const REAP_AFTER_MS = 1_000;

/** How long any key directory must be unchanged (and have nothing live) for the sweep to remove it. */
export const SWEEP_IDLE_MS = 60_000;

/** How long after the first use the first sweep runs. */
export const SWEEP_FIRST_MS = 10_000;

/** How often the sweep runs while the backend is open. */
export const SWEEP_EVERY_MS = 10 * 60_000;

/** Temporary directories older than this were abandoned by a crashed creator. */
const TEMP_ABANDONED_MS = 60 * 60_000;

/** Freed keys remembered at most; beyond this the oldest are removed at once. */
const MAX_PENDING = 10_000;

/** Filesystem calls in flight at once while removing or sweeping. */
const CONCURRENCY = 8;

/** Options of {@link Reaper}. */
export interface ReaperOptions {
  readonly root: string;
  readonly store: HeadStore;
  readonly floor: FenceFloor;
  /** True while this process uses the key directory (a waiter watches it): leave it alone. */
  readonly isBusy: (keyDir: string) => boolean;
  /** Called after a key directory was removed. */
  readonly onRemoved: (keyDir: string) => void;
}

/** A free head to remove. */
interface Candidate {
  readonly keyDir: string;
  readonly head: HeadName;
}

/** Removes the directories of free keys under one lock directory. */
export class Reaper {
  readonly #options: ReaperOptions;
  /** Keys this backend left free: their head then, and when. */
  readonly #pending = new Map<string, { head: HeadName; at: number }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  /** The removal or sweep in progress (one at a time). */
  #busy: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(options: ReaperOptions) {
    this.#options = options;
  }

  /** After this backend wrote `snapshot`: remember the key if it is now free, else forget it. */
  noteWrite(snapshot: Snapshot, now: number): void {
    const { keyDir, head } = snapshot;
    if (!head || !isIdle(snapshot.state, now)) {
      if (this.#pending.size > 0) this.#pending.delete(keyDir);
      return;
    }
    this.#pending.delete(keyDir); // re-insert: the map stays in order of freeing
    this.#pending.set(keyDir, { head, at: now });
    if (this.#pending.size > MAX_PENDING) this.#schedule(0);
    else this.#schedule(REAP_AFTER_MS);
  }

  /** Schedule the sweeps (the first soon, then periodically). Idempotent. */
  startSweeping(): void {
    if (this.#sweepTimer || this.#stopped) return;
    const run = (delayMs: number) => {
      this.#sweepTimer = setTimeout(() => {
        void this.sweep()
          .catch(() => undefined) // a failed sweep is retried at the next one
          .finally(() => {
            if (!this.#stopped) run(SWEEP_EVERY_MS);
          });
      }, delayMs);
      this.#sweepTimer.unref();
    };
    run(SWEEP_FIRST_MS);
  }

  /** Stop the timers and remove every key still waiting to be removed. */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#sweepTimer);
    await this.#serially(() => this.#removePending(Infinity));
  }

  /**
   * Remove every key directory unchanged for {@link SWEEP_IDLE_MS} with nothing live in it (and
   * abandoned temporary directories). Returns how many key directories were removed.
   */
  sweep(idleMs = SWEEP_IDLE_MS): Promise<number> {
    return this.#serially(() => this.#sweep(idleMs));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || (this.#timer && delayMs > 0)) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#serially(() => this.#removePending(Date.now() - REAP_AFTER_MS)).finally(() => {
        if (this.#pending.size > 0) this.#schedule(REAP_AFTER_MS);
      });
    }, delayMs);
    this.#timer.unref();
  }

  #serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(task, task);
    this.#busy = run.catch(() => undefined);
    return run;
  }

  /** Remove the pending keys freed at or before `freedBy` (and the oldest beyond the cap). */
  async #removePending(freedBy: number): Promise<number> {
    const due: Candidate[] = [];
    const excess = this.#pending.size - MAX_PENDING;
    for (const [keyDir, { head, at }] of this.#pending) {
      if (at > freedBy && due.length >= excess) break;
      due.push({ keyDir, head });
    }
    for (const { keyDir } of due) this.#pending.delete(keyDir);
    return this.#remove(due);
  }

  async #sweep(idleMs: number): Promise<number> {
    const { root, store } = this.#options;
    let names: string[];
    try {
      names = await readdir(root);
    } catch {
      return 0; // no directory yet (or it went away): nothing to sweep
    }
    const now = Date.now();
    const candidates: Candidate[] = [];
    let removed = 0;
    await forEachLimit(names, async (name) => {
      if (this.#stopped) return; // closing: the next process's sweep carries on
      const path = join(root, name);
      if (name.startsWith(TEMP_PREFIX)) {
        if (await unchangedFor(path, TEMP_ABANDONED_MS, now)) {
          await rm(path, { recursive: true, force: true }).catch(() => undefined);
        }
        return;
      }
      if (!isKeyDirName(name) || this.#options.isBusy(path)) return;
      if (!(await unchangedFor(path, idleMs, now))) return;
      const snapshot = await store.read(path);
      if (!snapshot.head) {
        if (await removeDir(store, path)) removed += 1;
      } else if (isIdle(snapshot.state, Date.now())) {
        candidates.push({ keyDir: path, head: snapshot.head });
      }
    });
    return removed + (await this.#remove(candidates));
  }

  /** Remove the candidates' directories (those whose head did not change); returns how many. */
  async #remove(candidates: readonly Candidate[]): Promise<number> {
    if (candidates.length === 0) return 0;
    let top = 0n;
    for (const { head } of candidates) if ((head.lastFence ?? 0n) > top) top = head.lastFence ?? 0n;
    // Before any head goes: every fence these directories issued is then below the floor.
    if (top > 0n) await this.#options.floor.raise(top);
    let removed = 0;
    await forEachLimit(candidates, async ({ keyDir, head }) => {
      if (this.#options.isBusy(keyDir)) return;
      try {
        // The compare-and-swap: fails if anyone changed the head since it was read.
        await unlink(join(keyDir, head.name));
      } catch {
        return;
      }
      if (head.dataFile) await unlink(join(keyDir, head.dataFile)).catch(() => undefined);
      this.#options.onRemoved(keyDir);
      if (await removeDir(this.#options.store, keyDir)) removed += 1;
    });
    return removed;
  }
}

/** Remove a key directory that has no head (emptying it first); false if it has one again. */
async function removeDir(store: HeadStore, keyDir: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await rmdir(keyDir);
      return true;
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return true;
      if (!hasCode(error, 'ENOTEMPTY') && !hasCode(error, 'EEXIST')) return false;
    }
    // Left-overs (a data file of a write that lost, a legacy token file): garbage without a head.
    if (!(await store.clearHeadless(keyDir).catch(() => false))) return false;
  }
  return false;
}

/** True if `path` exists and was last changed at least `ms` before `now`. */
async function unchangedFor(path: string, ms: number, now: number): Promise<boolean> {
  try {
    const stats = await lstat(path);
    return now - Math.max(stats.mtimeMs, stats.ctimeMs) >= ms;
  } catch {
    return false;
  }
}

/** Run `task` over `items`, {@link CONCURRENCY} at a time; a task's failure skips its item only. */
async function forEachLimit<T>(items: readonly T[], task: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
}
