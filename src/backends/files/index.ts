/**
 * The files backend: locks shared by the processes of one host through a directory, with no
 * server. The embedded default for the demo and the CLI.
 *
 * Each key has a directory holding one head file whose name is the key's state; every change is
 * one atomic `rename()` of that head to the next version, so taking over an expired lock is
 * decided by the filesystem and exactly one contender wins (see `head-store.ts`). Leases expire by
 * wall-clock time stored in the name; fences are the head's version number, so they strictly
 * increase across holders, releases and restarts (and skip numbers: extends and releases are
 * versions too). Waiters are woken by `fs.watch`, with polling as the fallback. Use a local
 * filesystem: network filesystems may retry renames and mis-report.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { filesBackend } from 'distlock/files';
 *
 * const locks = createLocks({ backend: filesBackend({ dir: '/var/lock/myapp' }) });
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
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  ReleaseOutcome,
  Unwatch,
} from '../../core/backend.js';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  LockClosedError,
} from '../../core/errors.js';
import { validateTtl } from '../../core/options.js';
import { hasCode, toLockError } from './fs-errors.js';
import {
  resolveFilesOptions,
  type FilesBackendOptions,
  type ResolvedFilesOptions,
} from './options.js';
import { HeadStore, readHead, type Head } from './head-store.js';
import { isKeyDirName, keyDirOf } from './paths.js';
import { FREE, isLive, isToken, storeToken, type LockRecord } from './record.js';
import { KeyWatchers } from './watch.js';

export { FILES_DEFAULTS, type FilesBackendOptions } from './options.js';

/** Compare-and-swap rounds before giving up; each lost round means another process progressed. */
const MAX_CAS_ATTEMPTS = 50;

/** A {@link LockBackend} whose optional operator calls and `watch` are all implemented. */
export type FilesBackend = LockBackend &
  Required<Pick<LockBackend, 'watch' | 'list' | 'forceRelease'>>;

/** How many keys' last-seen heads a backend remembers. */
const MAX_REMEMBERED_HEADS = 1_000;

/** Re-reads allowed for inspect/list when the head moves while its details are read. */
const MAX_READ_ATTEMPTS = 100;

/** What one round of a read-modify-write decides: a result, and the record to write for it. */
type Decision<T> = { readonly result: T; readonly write?: LockRecord };

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

class FilesBackendImpl implements FilesBackend {
  readonly name = 'files';
  readonly capabilities = Object.freeze({
    fencing: true,
    notify: true,
    fifo: false,
    crossProcess: true,
  });

  readonly #dir: string;
  readonly #store: HeadStore;
  readonly #watchers: KeyWatchers;
  /** The head this backend last read or wrote per key directory: a guess for the next change. */
  readonly #lastSeen = new Map<string, Head>();
  #closed = false;

  constructor(options: ResolvedFilesOptions) {
    this.#dir = options.dir;
    this.#store = new HeadStore({ root: options.dir, fsync: options.fsync });
    this.#watchers = new KeyWatchers({
      pollIntervalMs: options.pollIntervalMs,
      fsWatch: options.watch,
    });
  }

  async tryAcquire(request: AcquireRequest, options?: OperationOptions): Promise<AcquireResult> {
    const key = validateKey(request.key);
    const token = validateToken(request.token);
    const ttlMs = validateTtl(request.ttlMs);
    const stored = storeToken(token);
    // A new holder: its fence must be durable (with the fsync option).
    return this.#update<AcquireResult>(key, options, true, (head, now) => {
      if (isLive(head.record, now)) {
        return { result: { acquired: false, retryAfterMs: head.record.expiresAt - now } };
      }
      const fence = head.version + 1n;
      return {
        result: { acquired: true, fence },
        write: { state: 'held', token: stored, fence, expiresAt: now + ttlMs },
      };
    });
  }

  async extend(lease: LeaseRef, ttlMs: number, options?: OperationOptions): Promise<ExtendResult> {
    const key = validateKey(lease.key);
    const token = validateToken(lease.token);
    validateTtl(ttlMs);
    return this.#update<ExtendResult>(key, options, false, (head, now) => {
      if (!isLive(head.record, now)) return { result: { extended: false, reason: 'expired' } };
      if (!isToken(head.record.token, token)) {
        return { result: { extended: false, reason: 'not-owner' } };
      }
      return {
        result: { extended: true },
        write: { ...head.record, expiresAt: now + ttlMs },
      };
    });
  }

  async release(lease: LeaseRef, options?: OperationOptions): Promise<ReleaseOutcome> {
    const key = validateKey(lease.key);
    const token = validateToken(lease.token);
    return this.#update<ReleaseOutcome>(key, options, false, (head, now) => {
      if (!isLive(head.record, now)) return { result: 'expired' };
      if (!isToken(head.record.token, token)) return { result: 'not-owner' };
      return { result: 'released', write: FREE };
    });
  }

  async forceRelease(key: string, options?: OperationOptions): Promise<boolean> {
    validateKey(key);
    return this.#update<boolean>(key, options, false, (head, now) =>
      isLive(head.record, now) ? { result: true, write: FREE } : { result: false },
    );
  }

  async inspect(key: string, options?: OperationOptions): Promise<LockInfo | null> {
    validateKey(key);
    this.#check(options);
    return this.#info(keyDirOf(this.#dir, key), key);
  }

  async list(prefix: string, options?: OperationOptions): Promise<LockInfo[]> {
    if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix', 'must be a string');
    this.#check(options);
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return [];
      throw toLockError(error, 'list lock directory');
    }
    const found = await Promise.all(
      names
        .filter(isKeyDirName)
        .map((name) => this.#info(join(this.#dir, name), undefined, prefix)),
    );
    this.#check(options);
    return found
      .filter((info): info is LockInfo => info !== null)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async watch(key: string, onChange: () => void, options?: OperationOptions): Promise<Unwatch> {
    validateKey(key);
    if (typeof onChange !== 'function') {
      throw new InvalidArgumentError('onChange', 'must be a function');
    }
    this.#check(options);
    const keyDir = keyDirOf(this.#dir, key);
    // fs.watch needs the directory to exist before anyone writes the key's first version.
    await this.#store.ensureKeyDir(keyDir, key);
    this.#check(options);
    return this.#watchers.add(keyDir, onChange);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watchers.closeAll();
    this.#lastSeen.clear();
  }

  #check(options: OperationOptions | undefined): void {
    if (this.#closed) throw new LockClosedError('files backend');
    options?.signal?.throwIfAborted();
  }

  /**
   * The live holding recorded in `keyDir`, or null. `key` is read from the head file when not
   * known (listing), and must then start with `prefix`.
   */
  async #info(keyDir: string, key: string | undefined, prefix = ''): Promise<LockInfo | null> {
    for (let attempt = 0; attempt < MAX_READ_ATTEMPTS; attempt++) {
      const head = await readHead(keyDir);
      if (!isLive(head.record, Date.now())) return null;
      // Both reads below fail only if the head moved on meanwhile: then read it again.
      const name = key ?? (await this.#store.keyOf(keyDir, head));
      if (name === undefined) continue;
      if (!name.startsWith(prefix)) return null;
      const token = await this.#store.tokenText(keyDir, head.record.token);
      if (token === undefined) continue;
      const remainingMs = head.record.expiresAt - Date.now();
      if (remainingMs <= 0) return null;
      return { key: name, token, fence: head.record.fence, remainingMs };
    }
    throw new BackendUnavailableError('files backend: lock record changed too often to read');
  }

  /**
   * Read the key's head, let `decide` choose an outcome and maybe a successor record, and write
   * it; when another process wrote first, decide again on the newer head.
   *
   * The first round decides on the head this backend last saw, without reading the directory:
   * the rename fails unless that head is still current, so a stale guess only costs a re-read.
   * An uncontended acquire or release is then one rename. A stale guess is never trusted for an
   * answer that writes nothing (such as "held by someone else").
   */
  async #update<T>(
    key: string,
    options: OperationOptions | undefined,
    durable: boolean,
    decide: (head: Head, now: number) => Decision<T>,
  ): Promise<T> {
    const keyDir = keyDirOf(this.#dir, key);
    let head = this.#lastSeen.get(keyDir);
    let guessed = head !== undefined;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      this.#check(options);
      if (head === undefined) {
        head = await readHead(keyDir);
        guessed = false;
      }
      const decision = decide(head, Date.now());
      if (decision.write === undefined && guessed) {
        head = undefined;
        continue;
      }
      if (decision.write === undefined) {
        this.#remember(keyDir, head);
        return decision.result;
      }
      // Last point where aborting leaves nothing behind.
      this.#check(options);
      const written = await this.#store.swap(keyDir, key, head, decision.write, durable);
      if (written) {
        this.#remember(keyDir, written);
        return decision.result;
      }
      head = undefined;
    }
    this.#lastSeen.delete(keyDir);
    throw new BackendUnavailableError(`files backend: lock "${key}" changed too often to update`);
  }

  #remember(keyDir: string, head: Head): void {
    if (head.name === undefined) return;
    this.#lastSeen.delete(keyDir); // re-insert: Map order is then least recently used first
    this.#lastSeen.set(keyDir, head);
    if (this.#lastSeen.size > MAX_REMEMBERED_HEADS) {
      const oldest = this.#lastSeen.keys().next().value;
      if (oldest !== undefined) this.#lastSeen.delete(oldest);
    }
  }
}

/**
 * Create a files backend: locks shared by every process on this host that uses the same `dir`.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { filesBackend } from 'distlock/files';
 *
 * const locks = createLocks({ backend: filesBackend() }); // dir: <os tmpdir>/distlock
 * const lease = await locks.acquire('report:daily', { ttlMs: 60_000 });
 * try {
 *   await buildReport();
 * } finally {
 *   await lease.release();
 * }
 * ```
 * @throws {InvalidArgumentError} when an option is invalid (the error's `option` names it).
 */
export function filesBackend(options: FilesBackendOptions = {}): FilesBackend {
  return new FilesBackendImpl(resolveFilesOptions(options));
}
