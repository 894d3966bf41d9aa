/**
 * distlock itself behind the benchmark interface: one lock manager (and so one backend with its
 * own connections) per client, at the library's defaults or with tuned retry settings. The
 * library may also be another build of distlock (`--baseline`), to compare two versions in one
 * run.
 */
import * as thisBuild from '../../src/index.js';
import type { Lease, LockBackend, RetryOptions } from '../../src/index.js';
import type { Contender, LockClient } from './contender.js';

/** Opens a backend with its own connection(s), and closes them again. */
export type BackendOpener = () => Promise<{ backend: LockBackend; close: () => Promise<void> }>;

/** The parts of distlock a row uses: this build's, or another build's (`--baseline`). */
export interface DistlockLibrary {
  readonly createLocks: typeof thisBuild.createLocks;
  readonly LockTimeoutError: typeof thisBuild.LockTimeoutError;
}

/** A client over its own lock manager and backend, as every distlock row opens one. */
export interface ManagerClient<Args extends unknown[]> {
  /** `take` with this manager; a `LockTimeoutError` (it waited its default `waitMs`) is `null`. */
  acquire(...args: Args): Promise<Lease | null>;
  release(lease: Lease): Promise<void>;
  close(): Promise<void>;
}

/** Open a backend and a lock manager over it; `take` says how a holding is acquired. */
export async function openManagerClient<Args extends unknown[]>(
  options: {
    readonly open: BackendOpener;
    readonly ttlMs: number;
    readonly retry?: RetryOptions | undefined;
    readonly library?: DistlockLibrary | undefined;
  },
  take: (locks: thisBuild.LockManager, ...args: Args) => Promise<Lease>,
): Promise<ManagerClient<Args>> {
  const { createLocks, LockTimeoutError } = options.library ?? thisBuild;
  const { backend, close } = await options.open();
  const locks = createLocks({
    backend,
    ttlMs: options.ttlMs,
    ...(options.retry ? { retry: options.retry } : {}),
  });
  return {
    async acquire(...args) {
      try {
        return await take(locks, ...args);
      } catch (error) {
        if (error instanceof LockTimeoutError) return null;
        throw error;
      }
    },
    async release(lease) {
      await lease.release();
    },
    async close() {
      await locks.close();
      await close();
    },
  };
}

/** distlock over the backend `open` makes, with `retry` (the core's defaults when omitted). */
export function distlock(options: {
  readonly label: string;
  readonly ttlMs: number;
  readonly tuned: boolean;
  readonly retry?: RetryOptions;
  readonly settings: string;
  readonly open: BackendOpener;
  readonly library?: DistlockLibrary;
}): Contender {
  return {
    name: `distlock ${options.label}`,
    role: 'distlock',
    excludes: true,
    tuned: options.tuned,
    settings: options.settings,
    createClient: (): Promise<LockClient<Lease>> =>
      openManagerClient(options, (locks, key: string) => locks.acquire(key)),
  };
}

/** Retry settings of the tuned row: retry about every millisecond, like the peers' tuned rows. */
const TUNED_RETRY: RetryOptions = Object.freeze({
  delayMs: 1,
  maxDelayMs: 2,
  factor: 1,
  jitter: 0.5,
});

/**
 * distlock's rows for one backend: its defaults, plus a retry-tuned row when the backend waits by
 * polling. A backend with a server-side queue (`acquire`) never polls, so retry settings cannot
 * change its figures and a second row would only repeat the first.
 */
export async function distlockVariants(
  open: BackendOpener,
  ttlMs: number,
  baseline?: {
    readonly label: string;
    readonly library: DistlockLibrary;
    readonly open: BackendOpener;
  },
): Promise<Contender[]> {
  const probe = await open();
  const queued = typeof probe.backend.acquire === 'function';
  await probe.backend.close();
  await probe.close();
  const settings = queued
    ? 'createLocks defaults; waits in the server-side FIFO queue (retry settings unused)'
    : 'createLocks defaults: retry 25→500 ms ×2, jitter 0.5';
  const rows = [distlock({ label: '(defaults)', ttlMs, tuned: false, settings, open })];
  if (baseline) {
    rows.push(
      distlock({
        label: `(${baseline.label})`,
        ttlMs,
        tuned: false,
        settings: `${settings}; the build at --baseline`,
        open: baseline.open,
        library: baseline.library,
      }),
    );
  }
  if (!queued) {
    rows.push(
      distlock({
        label: '(tuned)',
        ttlMs,
        tuned: true,
        retry: TUNED_RETRY,
        settings: 'retry delayMs 1, maxDelayMs 2, factor 1, jitter 0.5',
        open,
      }),
    );
  }
  return rows;
}
