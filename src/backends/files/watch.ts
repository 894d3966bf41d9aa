/**
 * Wake-ups for waiters: `fs.watch` on the key's directory (every change to a key renames its head
 * file there, so any event means "look again"), a poll of the head version as the fallback where
 * `fs.watch` misses events or is unavailable (network filesystems, inotify limits), and a timer
 * for the current holder's expiry, which no filesystem event announces.
 *
 * One watcher per key directory is shared by all listeners of a backend. Every handle is
 * unref'd or non-persistent, so watching never keeps a process alive.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import type { Unwatch } from '../../core/backend.js';
import { readHead } from './head-store.js';

/** The longest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2_147_483_647;

interface Entry {
  readonly keyDir: string;
  readonly listeners: Set<() => void>;
  watcher: FSWatcher | undefined;
  poll: ReturnType<typeof setInterval> | undefined;
  expiry: ReturnType<typeof setTimeout> | undefined;
  /** Head version last seen, so a poll only announces real changes. */
  version: bigint;
  reading: boolean;
  announcing: boolean;
}

/** Options of {@link KeyWatchers}. */
export interface KeyWatchersOptions {
  readonly pollIntervalMs: number;
  /** Whether to use `fs.watch` at all (polling always runs). */
  readonly fsWatch: boolean;
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
      version: 0n,
      reading: false,
      announcing: false,
    };
    if (this.#options.fsWatch) {
      try {
        entry.watcher = fsWatch(keyDir, { persistent: false }, () => {
          this.#announce(entry);
          void this.#refresh(entry, false);
        });
        entry.watcher.on('error', () => {
          // The directory went away or the watch broke: polling carries on alone.
          entry.watcher?.close();
          entry.watcher = undefined;
        });
      } catch {
        entry.watcher = undefined; // e.g. inotify limits reached: polling carries on alone
      }
    }
    entry.poll = setInterval(() => void this.#refresh(entry, true), this.#options.pollIntervalMs);
    entry.poll.unref();
    return entry;
  }

  #close(entry: Entry): void {
    if (this.#entries.get(entry.keyDir) !== entry) return;
    this.#entries.delete(entry.keyDir);
    entry.watcher?.close();
    clearInterval(entry.poll);
    clearTimeout(entry.expiry);
    entry.listeners.clear();
  }

  /** Re-read the head; announce a new version if asked, and re-arm the expiry timer. Never throws. */
  async #refresh(entry: Entry, announceChange: boolean): Promise<void> {
    if (entry.reading) return;
    entry.reading = true;
    try {
      const head = await readHead(entry.keyDir);
      if (this.#entries.get(entry.keyDir) !== entry) return;
      const changed = head.version !== entry.version;
      entry.version = head.version;
      if (changed && announceChange) this.#announce(entry);
      clearTimeout(entry.expiry);
      entry.expiry = undefined;
      if (head.record.state === 'held') {
        const delayMs = Math.min(Math.max(0, head.record.expiresAt - Date.now() + 1), MAX_TIMER_MS);
        entry.expiry = setTimeout(() => this.#announce(entry), delayMs);
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
