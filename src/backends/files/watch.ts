/**
 * Wake-ups for waiters: `fs.watch` on the key's directory (every change to a key renames its head
 * file there, so any event means "look again"), a poll of the head as the fallback where
 * `fs.watch` misses events or is unavailable (network filesystems, inotify limits), and a timer
 * for the soonest expiry of a holder or a writer's intent, which no filesystem event announces.
 * A directory removed while watched (its key was free) is watched again once it is back.
 *
 * One watcher per key directory is shared by all listeners of a backend. Every handle is
 * unref'd or non-persistent, so watching never keeps a process alive.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import type { Unwatch } from '../../core/backend.js';
import type { Snapshot } from './head-store.js';

/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2_147_483_647;

interface Entry {
  readonly keyDir: string;
  readonly listeners: Set<() => void>;
  watcher: FSWatcher | undefined;
  poll: ReturnType<typeof setInterval> | undefined;
  expiry: ReturnType<typeof setTimeout> | undefined;
  /** When the armed expiry timer is due (undefined: none armed). */
  expiryAt: number | undefined;
  /** Head name last seen, so a poll only announces real changes. */
  head: string | undefined;
  /** The directory went away while watched: watch it again once it exists. */
  rewatch: boolean;
  reading: boolean;
  announcing: boolean;
}

/** Options of {@link KeyWatchers}. */
export interface KeyWatchersOptions {
  readonly pollIntervalMs: number;
  /** Whether to use `fs.watch` at all (polling always runs). */
  readonly fsWatch: boolean;
  /** Reads a key's state. */
  readonly read: (keyDir: string) => Promise<Snapshot>;
}

/** The watchers of one backend. */
export class KeyWatchers {
  readonly #options: KeyWatchersOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(options: KeyWatchersOptions) {
    this.#options = options;
  }

  /** Call `onChange` soon after the key stored in `keyDir` (which must exist) may have changed. */
  async add(keyDir: string, onChange: () => void): Promise<Unwatch> {
    let entry = this.#entries.get(keyDir);
    if (!entry) {
      entry = this.#open(keyDir);
      this.#entries.set(keyDir, entry);
      await this.#refresh(entry, false);
    }
    const listener = () => onChange();
    entry.listeners.add(listener);
    const owner = entry;
    return () => {
      owner.listeners.delete(listener);
      if (owner.listeners.size === 0) this.#close(owner);
    };
  }

  /** True while someone in this process watches the key stored in `keyDir`. */
  has(keyDir: string): boolean {
    return this.#entries.has(keyDir);
  }

  /** Stop every watcher. */
  closeAll(): void {
    for (const entry of [...this.#entries.values()]) this.#close(entry);
  }

  #open(keyDir: string): Entry {
    const entry: Entry = {
      keyDir,
      listeners: new Set(),
      watcher: undefined,
      poll: undefined,
      expiry: undefined,
      expiryAt: undefined,
      head: undefined,
      rewatch: false,
      reading: false,
      announcing: false,
    };
    this.#watchDir(entry);
    entry.poll = setInterval(() => void this.#refresh(entry, true), this.#options.pollIntervalMs);
    entry.poll.unref();
    return entry;
  }

  #watchDir(entry: Entry): void {
    if (!this.#options.fsWatch) return;
    try {
      const watcher = fsWatch(entry.keyDir, { persistent: false }, () => {
        this.#announce(entry);
        void this.#refresh(entry, false);
      });
      watcher.on('error', () => {
        // The directory went away (its key was free and it was removed) or the watch broke:
        // polling carries on, and watches the directory again once it is back.
        watcher.close();
        if (entry.watcher === watcher) entry.watcher = undefined;
        entry.rewatch = true;
      });
      entry.watcher = watcher;
    } catch (error) {
      // e.g. inotify limits reached: polling carries on alone (a missing directory: until back).
      entry.watcher = undefined;
      entry.rewatch = (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
    }
  }

  #close(entry: Entry): void {
    if (this.#entries.get(entry.keyDir) !== entry) return;
    this.#entries.delete(entry.keyDir);
    entry.watcher?.close();
    clearInterval(entry.poll);
    clearTimeout(entry.expiry);
    entry.listeners.clear();
  }

  /** Re-read the head; announce a change if asked, and re-arm the expiry timer. Never throws. */
  async #refresh(entry: Entry, announceChange: boolean): Promise<void> {
    if (entry.reading) return;
    entry.reading = true;
    try {
      const snapshot = await this.#options.read(entry.keyDir);
      if (this.#entries.get(entry.keyDir) !== entry) return;
      const changed = snapshot.head?.name !== entry.head;
      entry.head = snapshot.head?.name;
      if (changed && announceChange) this.#announce(entry);
      if (entry.rewatch && !entry.watcher && snapshot.head) {
        entry.rewatch = false;
        this.#watchDir(entry);
      }
      const now = Date.now();
      // A read that ends after the armed expiry was due (a busy loop runs the I/O callback
      // first) must not cancel that expiry's announcement: nothing else would announce it.
      if (entry.expiryAt !== undefined && entry.expiryAt <= now) this.#announce(entry);
      clearTimeout(entry.expiry);
      entry.expiry = undefined;
      entry.expiryAt = undefined;
      const expiries = [...snapshot.state.holders, ...snapshot.state.intents]
        .map((held) => held.expiresAt)
        .filter((at) => at > now);
      if (expiries.length > 0) {
        const delayMs = Math.min(Math.min(...expiries) - now + 1, MAX_TIMER_MS);
        entry.expiryAt = now + delayMs;
        entry.expiry = setTimeout(() => {
          entry.expiryAt = undefined;
          this.#announce(entry);
        }, delayMs);
        entry.expiry.unref();
      }
    } catch {
      // Missed wake-ups are allowed (the core polls too); the next tick tries again.
    } finally {
      entry.reading = false;
    }
  }

  /** Call every listener once, soon; bursts of events (a write and its clean-up) coalesce. */
  #announce(entry: Entry): void {
    if (entry.announcing) return;
    entry.announcing = true;
    setImmediate(() => {
      entry.announcing = false;
      for (const listener of [...entry.listeners]) {
        try {
          listener();
        } catch {
          // A listener's failure is its own; it must not stop the others or escape a timer.
        }
      }
    });
  }
}
