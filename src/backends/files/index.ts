/**
 * The files backend: locks shared by the processes of one host through a directory, with no
 * server. The embedded default for the demo and the CLI. Mutexes, read-write locks and counting
 * semaphores, with fences.
 *
 * Each key has a directory holding one head file whose name is the key's state; every change is
 * one atomic `rename()` of that head to the next version, so taking over an expired lock is
 * decided by the filesystem and exactly one contender wins (see `head-store.ts`). Leases expire by
 * wall-clock time stored in the state. Fences strictly increase per key, across releases,
 * restarts and the removal of free keys' directories (see `fence-floor.ts`); the lock directory
 * holds the keys in use, not every key ever locked (`reaper.ts`). Waiters are woken by `fs.watch`,
 * with polling as the fallback; they are not queued (`fifo: false`), but a writer waiting for a
 * key used by readers or a semaphore keeps an intent there that later readers wait behind
 * (`rules.ts`). The lock directory must be private to its user, or shared with a group on purpose
 * (`lock-directory.ts`). Use a local filesystem: network filesystems may retry renames and
 * mis-report.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { filesBackend } from 'distlock/files';
 *
 * const locks = createLocks({ backend: filesBackend({ dir: '/var/lib/myapp/locks' }) });
 * await locks.withLock('invoice:42', async (lease) => {
 *   await chargeCard({ fence: lease.fence });
 * });
 * ```
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  AcquireRequest,
  AcquireResult,
  ExtendResult,
  HolderInfo,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  QueuedAcquireOptions,
  ReleaseOutcome,
  Unwatch,
} from '../../core/backend.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockClosedError,
} from '../../core/errors.js';
import { claimOf } from '../../core/kinds.js';
import { validateTtl } from '../../core/options.js';
import { WakeLatch } from '../../core/wake.js';
import { FenceFloor } from './fence-floor.js';
import { hasCode, toLockError } from './fs-errors.js';
import { HeadStore, type Snapshot } from './head-store.js';
import { liveState, type KeyState } from './key-state.js';
import { EntryModes, prepareLockDirectory } from './lock-directory.js';
import {
  resolveFilesOptions,
  type FilesBackendOptions,
  type ResolvedFilesOptions,
} from './options.js';
import { isKeyDirName, keyDirOf } from './paths.js';
import { Reaper } from './reaper.js';
import {
  decideAcquire,
  decideExtend,
  decideForceRelease,
  decideRelease,
  INTENT_REFRESH_BELOW_MS,
  modeOf,
  type Attempt,
  type AttemptResult,
  type Decision,
} from './rules.js';
import { KeyWatchers } from './watch.js';

export { FILES_DEFAULTS, type FilesBackendOptions } from './options.js';
export {
  defaultLockDirectory,
  LockDirectoryError,
  type LockDirectoryProblem,
} from './lock-directory.js';
export { INTENT_TTL_MS } from './rules.js';

/** Compare-and-swap rounds before giving up; each lost round means another process progressed. */
const MAX_CAS_ATTEMPTS = 200;

/**
 * Lost rounds after which an attempt to take a key reports it as taken: each loss means another
 * request changed the key first, and the caller (or the wait) decides whether to try again.
 */
const MAX_LOST_ATTEMPT_ROUNDS = 8;

/** How many keys' last-seen heads a backend remembers. */
const MAX_REMEMBERED_HEADS = 1_000;

/** Re-reads allowed for inspect/list when the head moves while its key is read. */
const MAX_READ_ATTEMPTS = 100;

/** A {@link LockBackend} whose optional calls are all implemented, and its operator extras. */
export type FilesBackend = LockBackend &
  Required<Pick<LockBackend, 'acquire' | 'watch' | 'list' | 'forceRelease'>> & {
    /**
     * Remove the directories of keys that nobody holds or waits for and that nobody changed for
     * `idleMs` (the backend also does this by itself, shortly after its first use and every ten
     * minutes). Returns how many it removed.
     * @param idleMs @default 60_000
     */
    sweep(idleMs?: number): Promise<number>;
  };

/** How an update runs (see `#update`). */
interface UpdateOptions<T> {
  /** The decision may issue a fence: a new key directory's state needs the fence floor. */
  readonly base?: boolean;
  /** After this many lost rounds, answer this instead of trying again. */
  readonly onContention?: () => T;
  /** Clean-up after the caller stopped waiting: runs even once closed or aborted. */
  readonly cleanup?: boolean;
}

function validateToken(token: unknown): string {
  if (typeof token !== 'string' || token.length === 0) {
    throw new InvalidArgumentError('token', 'must be a non-empty string');
  }
  return token;
}

function validateKey(key: unknown): string {
  if (typeof key !== 'string') throw new InvalidArgumentError('key', 'must be a string');
  return key;
}

function attemptOf(request: AcquireRequest, waiting: boolean): Attempt {
  return {
    key: validateKey(request.key),
    token: validateToken(request.token),
    ttlMs: validateTtl(request.ttlMs),
    claim: claimOf(request),
    waiting,
  };
}

const CONTENDED: AttemptResult = Object.freeze({ acquired: false, retryAfterMs: 0 });

class FilesBackendImpl implements FilesBackend {
  readonly name = 'files';
  readonly capabilities = Object.freeze({
    fencing: true,
    notify: true,
    fifo: false,
    crossProcess: true,
    shared: true,
  });

  readonly #options: ResolvedFilesOptions;
  readonly #dir: string;
  readonly #store: HeadStore;
  readonly #floor: FenceFloor;
  readonly #watchers: KeyWatchers;
  readonly #reaper: Reaper;
  /** The state this backend last read or wrote per key directory: a guess for the next change. */
  readonly #lastSeen = new Map<string, Snapshot>();
  /** Key directories of recently used keys (hashing the key is a measurable share of a call). */
  readonly #keyDirs = new Map<string, string>();
  /** The lock directory checked (once; again after a failure). */
  #prepared: Promise<void> | undefined;
  /** Waits in progress: `close()` wakes them, and waits for them to withdraw. */
  readonly #waits = new Map<WakeLatch, Promise<unknown>>();
  #closed = false;

  constructor(options: ResolvedFilesOptions) {
    this.#options = options;
    this.#dir = options.dir;
    const modes = new EntryModes(options.shareWithGroup);
    this.#store = new HeadStore({
      root: options.dir,
      fsync: options.fsync,
      modes,
      prepareRoot: () => this.#prepare(true),
    });
    this.#floor = new FenceFloor({ root: options.dir, fsync: options.fsync, modes });
    this.#watchers = new KeyWatchers({
      pollIntervalMs: options.pollIntervalMs,
      fsWatch: options.watch,
      read: (keyDir) => this.#store.read(keyDir),
    });
    this.#reaper = new Reaper({
      root: options.dir,
      store: this.#store,
      floor: this.#floor,
      isBusy: (keyDir) => this.#watchers.has(keyDir),
      onRemoved: (keyDir) => this.#lastSeen.delete(keyDir),
    });
  }

  async tryAcquire(request: AcquireRequest, options?: OperationOptions): Promise<AcquireResult> {
    const result = await this.#attempt(attemptOf(request, false), options?.signal);
    // The lease's TTL started after the core sent the request: its send time is early enough.
    return result.acquired ? { acquired: true, fence: result.fence } : result;
  }

  /**
   * Wait for the key, woken by `fs.watch` and polling. Not a queue (`fifo: false`): this is where a
   * waiting writer keeps its intent alive, and withdraws it when the wait ends (see `rules.ts`).
   */
  async acquire(
    request: AcquireRequest,
    options: QueuedAcquireOptions,
  ): Promise<AcquireResult & { acquired: true }> {
    const attempt = attemptOf(request, true);
    // The first attempt reads no signal: the core builds one only for a wait that needs it.
    let result = await this.#attempt(attempt, undefined);
    options.onQueued?.();
    // Granted at once: the TTL started after the core sent the request (its deadline is earlier).
    if (result.acquired) return { acquired: true, fence: result.fence };
    const latch = new WakeLatch();
    const waiting = this.#wait(attempt, result, latch, options);
    this.#waits.set(latch, waiting);
    try {
      // Granted after waiting: the lease's TTL started at `startedAt`, long after the request.
      result = await waiting;
      return result as AttemptResult & { acquired: true };
    } finally {
      this.#waits.delete(latch);
    }
  }

  async extend(lease: LeaseRef, ttlMs: number, options?: OperationOptions): Promise<ExtendResult> {
    const key = validateKey(lease.key);
    const token = validateToken(lease.token);
    validateTtl(ttlMs);
    return this.#update(key, options?.signal, (state, now) =>
      decideExtend(state, now, token, ttlMs),
    );
  }

  async release(lease: LeaseRef, options?: OperationOptions): Promise<ReleaseOutcome> {
    const key = validateKey(lease.key);
    const token = validateToken(lease.token);
    return this.#update(key, options?.signal, (state, now) => decideRelease(state, now, token));
  }

  async forceRelease(key: string, options?: OperationOptions): Promise<boolean> {
    validateKey(key);
    return this.#update(key, options?.signal, decideForceRelease);
  }

  async inspect(key: string, options?: OperationOptions): Promise<LockInfo | null> {
    validateKey(key);
    this.#check(options?.signal);
    await this.#prepare();
    const snapshot = await this.#store.read(this.#keyDirOf(key));
    return infoOf(key, snapshot.state, Date.now());
  }

  async list(prefix: string, options?: OperationOptions): Promise<LockInfo[]> {
    if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
    this.#check(options?.signal);
    await this.#prepare();
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return [];
      throw toLockError(error, 'list lock directory');
    }
    const found: LockInfo[] = [];
    const keyDirs = names.filter(isKeyDirName).map((name) => join(this.#dir, name));
    for (let i = 0; i < keyDirs.length; i += LIST_BATCH) {
      const infos = await Promise.all(
        keyDirs.slice(i, i + LIST_BATCH).map((keyDir) => this.#listed(keyDir, prefix)),
      );
      for (const info of infos) if (info) found.push(info);
      this.#check(options?.signal);
    }
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async watch(key: string, onChange: () => void, options?: OperationOptions): Promise<Unwatch> {
    validateKey(key);
    if (typeof onChange !== 'function') {
      throw new InvalidArgumentError('onChange', 'must be a function');
    }
    this.#check(options?.signal);
    return this.#watchKey(key, onChange, options?.signal);
  }

  async sweep(idleMs?: number): Promise<number> {
    if (idleMs !== undefined && !(Number.isInteger(idleMs) && idleMs >= 0)) {
      throw new InvalidArgumentError('idleMs', 'must be a non-negative integer');
    }
    this.#check(undefined);
    await this.#prepare();
    return this.#reaper.sweep(idleMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Waiting acquires wake up, find the backend closed, withdraw their intents and reject.
    for (const latch of this.#waits.keys()) latch.notify();
    await Promise.allSettled(this.#waits.values());
    this.#watchers.closeAll();
    await this.#reaper.close().catch(() => undefined);
    this.#lastSeen.clear();
  }

  #check(signal: AbortSignal | undefined): void {
    if (this.#closed) throw new LockClosedError('files backend');
    signal?.throwIfAborted();
  }

  /** Check the lock directory (creating it if missing) before its first use, or `again`. */
  #prepare(again = false): Promise<void> {
    if (!this.#prepared || again) {
      const prepared = prepareLockDirectory(this.#dir, {
        shareWithGroup: this.#options.shareWithGroup,
      });
      this.#prepared = prepared;
      prepared.then(
        () => this.#reaper.startSweeping(),
        () => {
          if (this.#prepared === prepared) this.#prepared = undefined; // check again next time
        },
      );
    }
    return this.#prepared;
  }

  /** One attempt to take the key (a waiting one may register or refresh an intent). */
  #attempt(attempt: Attempt, signal: AbortSignal | undefined): Promise<AttemptResult> {
    return this.#update(attempt.key, signal, (state, now) => decideAcquire(state, now, attempt), {
      base: true,
      onContention: () => CONTENDED,
    });
  }

  /** The rest of `acquire` after a refused first attempt: wake up, try again, until granted. */
  async #wait(
    attempt: Attempt,
    first: AttemptResult,
    latch: WakeLatch,
    options: QueuedAcquireOptions,
  ): Promise<AttemptResult> {
    let result = first;
    let intent = !first.acquired && first.intentExpiresAt !== undefined;
    let unwatch: Unwatch | undefined;
    try {
      const signal = options.signal;
      // A waiter that cannot watch still polls.
      unwatch = await this.#watchKey(attempt.key, latch.notify, signal).catch(() => undefined);
      while (!result.acquired) {
        await latch.wait(this.#nextTryInMs(result), signal);
        result = await this.#attempt(attempt, signal);
        if (!result.acquired && result.intentExpiresAt !== undefined) intent = true;
      }
      return result;
    } catch (error) {
      // Stopped waiting (abort, deadline, close, a failed attempt): the intent must not keep
      // readers out. The core also releases the token, which would withdraw it as well.
      if (intent) await this.#withdraw(attempt).catch(() => undefined);
      throw error;
    } finally {
      await unwatch?.();
    }
  }

  /** When to try again: the poll interval, or sooner if a blocker expires or the intent is due. */
  #nextTryInMs(result: AttemptResult): number {
    let delayMs = this.#options.pollIntervalMs;
    if (result.acquired) return 0;
    if (result.retryAfterMs !== undefined) delayMs = Math.min(delayMs, result.retryAfterMs + 1);
    if (result.intentExpiresAt !== undefined) {
      const refreshInMs = result.intentExpiresAt - INTENT_REFRESH_BELOW_MS - Date.now();
      delayMs = Math.min(delayMs, Math.max(1, refreshInMs + 1));
    }
    return Math.max(1, delayMs);
  }

  /** Remove the intent of a writer that stopped waiting. */
  #withdraw(attempt: Attempt): Promise<ReleaseOutcome> {
    return this.#update(
      attempt.key,
      undefined,
      (state, now) => {
        const own = state.intents.some((i) => i.token === attempt.token);
        return own ? decideRelease(state, now, attempt.token) : { result: 'expired' as const };
      },
      { cleanup: true },
    );
  }

  async #watchKey(key: string, onChange: () => void, signal?: AbortSignal): Promise<Unwatch> {
    await this.#prepare();
    const keyDir = this.#keyDirOf(key);
    // fs.watch needs the directory to exist before anyone writes the key's next state.
    if (!(await this.#store.read(keyDir)).head) await this.#store.createKeyDir(keyDir, key);
    this.#check(signal);
    return this.#watchers.add(keyDir, onChange);
  }

  /** The live holders of a listed key directory whose key starts with `prefix`. */
  async #listed(keyDir: string, prefix: string): Promise<LockInfo | null> {
    for (let attempt = 0; attempt < MAX_READ_ATTEMPTS; attempt++) {
      const snapshot = await this.#store.read(keyDir);
      const now = Date.now();
      if (liveState(snapshot.state, now).holders.length === 0) return null;
      // Fails only if the head moved on meanwhile: then read it again.
      const key = await this.#store.keyOf(snapshot);
      if (key === undefined) continue;
      return key.startsWith(prefix) ? infoOf(key, snapshot.state, now) : null;
    }
    throw new BackendUnavailableError('files backend: a lock record changed too often to read');
  }

  /**
   * Read the key's state, let `decide` choose an outcome and maybe a successor state, and write
   * it; when another process wrote first, decide again on the newer state.
   *
   * The first round decides on the state this backend last saw, without reading the directory:
   * the rename fails unless that state is still current, so a stale guess only costs a re-read.
   * An uncontended acquire or release is then one rename. A stale guess is never trusted for an
   * answer that writes nothing (such as "held by someone else"), nor for an error.
   */
  async #update<T>(
    key: string,
    signal: AbortSignal | undefined,
    decide: (state: KeyState, now: number) => Decision<T>,
    how: UpdateOptions<T> = {},
  ): Promise<T> {
    if (!how.cleanup) this.#check(signal);
    await this.#prepare();
    const keyDir = this.#keyDirOf(key);
    let snapshot = this.#lastSeen.get(keyDir);
    let guessed = snapshot !== undefined;
    let lost = 0;
    for (let round = 0; round < MAX_CAS_ATTEMPTS; round++) {
      if (!how.cleanup) this.#check(signal);
      if (!snapshot) {
        snapshot = await this.#store.read(keyDir);
        guessed = false;
      }
      const head = snapshot.head;
      let state = snapshot.state;
      // A new key directory's first fence comes after the floor, read after its head
      // (fence-floor.ts); so does a legacy head's, which an older version may have created anew
      // after this one removed the key's directory.
      if (how.base && head && (state.lastFence === undefined || head.incarnation === undefined)) {
        const floor = await this.#floor.read();
        if (state.lastFence === undefined || state.lastFence < floor) {
          state = { ...state, lastFence: floor };
        }
      }
      let decision: Decision<T>;
      try {
        decision = decide(state, Date.now());
      } catch (error) {
        if (!guessed) throw error;
        snapshot = undefined;
        continue;
      }
      if (!decision.next) {
        if (guessed) {
          snapshot = undefined;
          continue;
        }
        this.#remember(snapshot);
        return decision.result;
      }
      // Last point where aborting leaves nothing behind.
      if (!how.cleanup) this.#check(signal);
      if (!head) {
        // A key without a directory gets one; then decide again on its (new) state.
        snapshot = await this.#store.createKeyDir(keyDir, key);
        guessed = false;
        continue;
      }
      const written = await this.#store.swap(
        { ...snapshot, head },
        decision.next,
        decision.issuesFence === true,
      );
      if (written) {
        this.#remember(written);
        this.#reaper.noteWrite(written, Date.now());
        return decision.result;
      }
      if (++lost >= MAX_LOST_ATTEMPT_ROUNDS && how.onContention) return how.onContention();
      snapshot = undefined;
    }
    this.#lastSeen.delete(keyDir);
    throw new BackendUnavailableError(`files backend: lock "${key}" changed too often to update`);
  }

  #keyDirOf(key: string): string {
    let keyDir = this.#keyDirs.get(key);
    if (keyDir === undefined) {
      keyDir = keyDirOf(this.#dir, key);
      if (this.#keyDirs.size >= MAX_REMEMBERED_HEADS) this.#keyDirs.clear();
      this.#keyDirs.set(key, keyDir);
    }
    return keyDir;
  }

  #remember(snapshot: Snapshot): void {
    const { keyDir } = snapshot;
    if (!snapshot.head) return;
    this.#lastSeen.delete(keyDir); // re-insert: Map order is then least recently used first
    this.#lastSeen.set(keyDir, snapshot);
    if (this.#lastSeen.size > MAX_REMEMBERED_HEADS) {
      const oldest = this.#lastSeen.keys().next().value;
      if (oldest !== undefined) this.#lastSeen.delete(oldest);
    }
  }
}

/** Key directories read at once by `list`. */
const LIST_BATCH = 32;

/** What `inspect` and `list` report: every live holder, or `null` when nobody holds the key. */
function infoOf(key: string, state: KeyState, now: number): LockInfo | null {
  const live = liveState(state, now);
  if (live.holders.length === 0) return null;
  const holders: HolderInfo[] = [...live.holders]
    .sort((a, b) => (a.fence < b.fence ? -1 : a.fence > b.fence ? 1 : 0))
    .map((h) => ({ token: h.token, fence: h.fence, remainingMs: h.expiresAt - now, mode: h.mode }));
  const newest = holders[holders.length - 1]!;
  const mode = modeOf(live.holders);
  return {
    key,
    token: newest.token,
    fence: newest.fence,
    remainingMs: newest.remainingMs,
    mode,
    holders,
    ...(mode === 'shared' ? { limit: live.limit } : {}),
    // Writers waiting behind readers or permits (their intents); other waiters are not seen.
    ...(live.intents.length > 0 ? { waiters: live.intents.length } : {}),
  };
}

/**
 * Create a files backend: locks shared by every process on this host that uses the same `dir`.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { filesBackend } from 'distlock/files';
 *
 * // dir: $XDG_RUNTIME_DIR/distlock, or <os tmpdir>/distlock-<uid>
 * const locks = createLocks({ backend: filesBackend() });
 * const lease = await locks.acquire('report:daily', { ttlMs: 60_000 });
 * try {
 *   await buildReport();
 * } finally {
 *   await lease.release();
 * }
 * ```
 * @throws {InvalidArgumentError} when an option is invalid (the error's `option` names it). A
 *   lock directory that cannot be used, or that another user could tamper with, is refused at
 *   its first use with a `LockDirectoryError` (an `InvalidArgumentError` for `dir`).
 */
export function filesBackend(options: FilesBackendOptions = {}): FilesBackend {
  return new FilesBackendImpl(resolveFilesOptions(options));
}
