/**
 * The etcd lock backend: etcd's mutex recipe over session leases. This class only wires the
 * rooms together:
 *
 * - `calls.ts`: every request to etcd (deadlines, retries, close, error mapping via `errors.ts`);
 * - `sessions.ts` / `session.ts`: one lease per lease TTL, kept alive, lost at a local deadline;
 * - `keys.ts` / `entry.ts` / `dir-keys.ts`: where locks live in etcd and what an entry says;
 * - `queue.ts` (with `turn.ts`, `reads.ts`, `predecessor.ts`): taking a lock, waiting in line;
 *   `shared-queue.ts` and `shared-turn.ts`: the same for readers and semaphore permits;
 * - `holdings.ts`: the locks held here and the reaper; `holder.ts`: extend and release;
 * - `inspect.ts`: `inspect` and `list`; `key-watch.ts`: the optional `watch`.
 */
import { setMaxListeners } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { sleep } from '../../core/abort.js';
import type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  QueuedAcquireOptions,
  ReleaseOutcome,
  Unwatch,
} from '../../core/backend.js';
import { LockClosedError } from '../../core/errors.js';
import { EtcdCalls } from './calls.js';
import { DirKeysCache } from './dir-keys.js';
import { extendLock, forceReleaseLock, releaseLock, type HolderParts } from './holder.js';
import { Holdings, type Granted } from './holdings.js';
import { inspectLock, listLocks } from './inspect.js';
import { watchKey } from './key-watch.js';
import { keyLayout } from './keys.js';
import type { ResolvedEtcdOptions } from './options.js';
import { LockQueue } from './queue.js';
import { QueueReads } from './reads.js';
import { SessionPool } from './sessions.js';

const CAPABILITIES: BackendCapabilities = Object.freeze({
  fencing: true,
  notify: true,
  fifo: true,
  crossProcess: true,
  shared: true,
});

/** A `LockBackend` over etcd. Created by `etcdBackend()`. */
export class EtcdBackend implements LockBackend {
  readonly name = 'etcd';
  readonly capabilities = CAPABILITIES;

  readonly #ownsClient: boolean;
  readonly #options: ResolvedEtcdOptions;
  readonly #calls: EtcdCalls;
  readonly #sessions: SessionPool;
  readonly #holdings: Holdings;
  readonly #queue: LockQueue;
  readonly #parts: HolderParts;
  #closed: Promise<void> | undefined;

  constructor(
    client: Etcd3,
    ownsClient: boolean,
    options: ResolvedEtcdOptions,
    endpoints: readonly string[],
  ) {
    this.#ownsClient = ownsClient;
    this.#options = options;
    const calls = (this.#calls = new EtcdCalls(client, options, endpoints));
    // Every pending acquire listens for close(): many at once is expected, not a leak.
    setMaxListeners(0, calls.closing);
    const holdings = (this.#holdings = new Holdings(calls, options));
    this.#sessions = new SessionPool(calls, options, (session) =>
      session.signal.addEventListener('abort', () => holdings.sessionEnded(session), {
        once: true,
      }),
    );
    const layout = keyLayout(options.layout, options.namespace);
    const dirs = new DirKeysCache(client);
    const reads = new QueueReads(calls, dirs, layout);
    this.#parts = { calls, options, layout, dirs, reads, holdings };
    this.#queue = new LockQueue({ ...this.#parts, sessions: this.#sessions });
  }

  tryAcquire(request: AcquireRequest, options: OperationOptions = {}): Promise<AcquireResult> {
    return this.#queue.tryAcquire(request, options);
  }

  acquire(request: AcquireRequest, options: QueuedAcquireOptions): Promise<Granted> {
    return this.#queue.acquire(request, options);
  }

  extend(lease: LeaseRef, ttlMs: number, options: OperationOptions = {}): Promise<ExtendResult> {
    return this.#open(() => extendLock(this.#parts, lease, ttlMs, options));
  }

  release(lease: LeaseRef, options: OperationOptions = {}): Promise<ReleaseOutcome> {
    return this.#open(() => releaseLock(this.#parts, lease, options));
  }

  inspect(key: string, options: OperationOptions = {}): Promise<LockInfo | null> {
    return this.#open(() => inspectLock(this.#parts, key, options.signal));
  }

  list(prefix: string, options: OperationOptions = {}): Promise<LockInfo[]> {
    return this.#open(() => listLocks(this.#parts, prefix, options.signal));
  }

  forceRelease(key: string, options: OperationOptions = {}): Promise<boolean> {
    return this.#open(() => forceReleaseLock(this.#parts, key, options));
  }

  watch(key: string, onChange: () => void, options: OperationOptions = {}): Promise<Unwatch> {
    return this.#open(() => watchKey(this.#parts, key, onChange, options.signal));
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = this.#close();
      this.#queue.closedBy(this.#closed);
    }
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#calls.close(new LockClosedError('etcd backend'));
    this.#holdings.finishAll();
    // Bounded: cancelling a watcher waits for etcd's answer, which may never come.
    const bound = new AbortController();
    await Promise.race([
      this.#queue.close(),
      sleep(this.#options.operationTimeoutMs, bound.signal).catch(() => undefined),
    ]);
    bound.abort(); // no timer left to keep the process alive
    // Revoking the sessions deletes every entry of this backend: its locks and queue places.
    // Through an outage too, for a while: until then they would block the locks for their TTL.
    await this.#sessions.close(Date.now() + this.#options.releaseTimeoutMs);
    if (this.#ownsClient) this.#calls.client.close();
  }

  /** Run `call` unless the backend is closed (then reject with `LockClosedError`). */
  async #open<T>(call: () => Promise<T>): Promise<T> {
    this.#calls.throwIfClosed();
    return call();
  }
}
