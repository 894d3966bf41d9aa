/**
 * `distlock run KEY -- CMD ARGS…`: run a command while holding a lock.
 *
 * The rule that keeps two commands from overlapping when the lock is lost: the lease's local
 * deadline (`lease.expiresAt`) is computed from the time the acquire/extend request was *sent*,
 * less a clock-drift margin, so it passes before the store lets anyone else take the key. Where the
 * store can also free the key on its own clock (etcd: the session lease, kept alive apart from the
 * lock), the earlier of the two local deadlines counts. distlock renews every ttl/3. If the lease
 * gets within `grace + margin` of that deadline without a successful renewal, the command gets
 * SIGTERM, and SIGKILL `margin` before the deadline (`margin` = min(200 ms, ttl/20) absorbs a late
 * timer on a busy host). So the command is dead
 * before another holder can exist. When the store says the lock is gone early (broken with
 * `release --force`) another holder may already exist; the command then gets SIGTERM at once and
 * SIGKILL `grace` later at the latest.
 */
import { constants } from 'node:os';
import { LockLostError, LockTimeoutError } from '../core/errors.js';
import type { Lease, LockManager, WithLockOptions } from '../index.js';
import { CliError, describeError, UsageError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';
import { openLocks } from './open-locks.js';
import { formatRemaining, printError, TOKEN_PREFIX_LENGTH } from './output.js';
import { exitCodeOf, SupervisedChild } from './supervised-child.js';

/** Default SIGTERM→SIGKILL grace, capped at a quarter of the TTL. */
export const DEFAULT_GRACE_MS = 2_000;

/** SIGKILL lands this long before the local deadline: min(200 ms, ttl/20). */
export function killMarginMs(ttlMs: number): number {
  return Math.min(200, Math.floor(ttlMs / 20));
}

/** Signals distlock forwards to the command (or that cancel the wait before it starts). */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** A signal arrived before the command was running: exit 128 + its number. */
class InterruptedError extends CliError {
  readonly signal: NodeJS.Signals;

  constructor(signal: NodeJS.Signals) {
    super(128 + signalNumber(signal), `interrupted by ${signal}`);
    this.signal = signal;
  }
}

/** Options of {@link runUnderLock}, already parsed. */
export interface RunOptions {
  readonly key: string;
  /** undefined: run no command, hold the lock until SIGINT, SIGTERM or SIGHUP. */
  readonly command: string | undefined;
  readonly args: readonly string[];
  readonly ttlMs: number;
  /** 0 tries once; `Infinity` waits without a deadline. */
  readonly waitMs: number;
  /** Time between SIGTERM and SIGKILL; undefined picks the default for the TTL. */
  readonly graceMs: number | undefined;
  /** Exit code when the lock is held (`waitMs` 0) or not acquired in time (flock's -E). */
  readonly conflictExitCode: number;
  readonly backendUrl: string | undefined;
  /** How KEY is held: alone, as a read share (`--shared`), or as one of `limit` permits (`--limit`). */
  readonly hold: 'exclusive' | 'shared' | { readonly limit: number };
  readonly foreground: boolean;
  readonly verbose: boolean;
}

/** The grace period for a TTL: `min(2s, ttl/4)` unless given; at most a quarter of the TTL. */
export function resolveGraceMs(ttlMs: number, graceMs: number | undefined): number {
  const limit = Math.floor(ttlMs / 4);
  if (graceMs === undefined) return Math.min(DEFAULT_GRACE_MS, limit);
  if (graceMs > limit) {
    throw new UsageError(
      `--grace: ${graceMs} ms is more than a quarter of --ttl (${ttlMs} ms); the command must be ` +
        'dead before the lease can expire, and renewals happen every ttl/3',
    );
  }
  return graceMs;
}

/** Acquire, run the command under the lock, release; resolves with distlock's exit code. */
export async function runUnderLock(options: RunOptions): Promise<number> {
  const graceMs = resolveGraceMs(options.ttlMs, options.graceMs);
  const interrupted = new AbortController();
  let child: SupervisedChild | undefined;
  let finishing = false;

  const onSignal = (signal: NodeJS.Signals) => {
    if (child !== undefined) {
      if (!finishing) child.signal(signal);
    } else if (!interrupted.signal.aborted) {
      interrupted.abort(new InterruptedError(signal));
    }
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);

  try {
    const store = { deadline: Infinity };
    const locks = await openLocks(options.backendUrl, {
      ttlMs: options.ttlMs,
      onStoreDeadline: (deadline) => {
        store.deadline = deadline;
      },
    });
    try {
      const supervision = { graceMs, storeDeadline: () => store.deadline };
      return await holdAndRun(locks, options, supervision, interrupted.signal, (started) => {
        child = started;
      }).finally(() => {
        finishing = true;
      });
    } finally {
      await locks.close().catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof InterruptedError && interrupted.signal.reason === error) {
      printError(`${error.message} before the command started (lock "${options.key}")`);
      return error.exitCode;
    }
    throw error;
  } finally {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, onSignal);
  }
}

/** How the command is watched over: its grace period and the store's own deadline, if any. */
interface Supervision {
  readonly graceMs: number;
  /** See `OpenLocksOptions.onStoreDeadline`; Infinity where only the lease counts. */
  readonly storeDeadline: () => number;
}

async function holdAndRun(
  locks: LockManager,
  options: RunOptions,
  supervision: Supervision,
  interrupted: AbortSignal,
  onStarted: (child: SupervisedChild) => void,
): Promise<number> {
  let exitCode: number | undefined;
  // One round trip first, so an unreachable store is reported as such (exit 69) at once rather
  // than as a lock that was not acquired in time.
  await locks.inspect(options.key);
  try {
    await withHolding(
      locks,
      options,
      async (lease) => {
        if (options.verbose) {
          printError(
            `acquired "${options.key}" (fence ${lease.fence}, token ${lease.token.slice(0, TOKEN_PREFIX_LENGTH)}…, ` +
              `expires in ${formatRemaining(lease.expiresAt - Date.now())} unless renewed)`,
          );
        }
        // A signal that came while acquiring or after: the command must not start.
        if (interrupted.aborted) throw interrupted.reason;
        if (options.command === undefined) {
          exitCode = await holdUntilSignal(locks, lease, options.key, interrupted);
          return;
        }
        const child = await SupervisedChild.start({
          command: options.command,
          args: options.args,
          foreground: options.foreground,
          env: {
            ...process.env,
            DISTLOCK_KEY: options.key,
            DISTLOCK_TOKEN: lease.token,
            DISTLOCK_FENCE: lease.fence.toString(),
            DISTLOCK_DEADLINE: String(lease.expiresAt),
          },
        });
        onStarted(child);
        // A signal that came while the command was being spawned is delivered now.
        if (interrupted.reason instanceof InterruptedError) child.signal(interrupted.reason.signal);
        exitCode = await superviseUntilExit(locks, lease, child, supervision, options);
      },
      { ttlMs: options.ttlMs, waitMs: options.waitMs, signal: interrupted },
    );
  } catch (error) {
    if (error instanceof LockTimeoutError && exitCode === undefined) {
      throw await notAcquiredError(locks, options);
    }
    // withLock rethrows what the callback threw; after the command ran, report its outcome anyway.
    if (exitCode === undefined) throw error;
    printError(`could not release lock "${options.key}": ${describeError(error)}`);
  }
  if (options.verbose && exitCode !== ExitCode.LOCK_LOST) printError(`released "${options.key}"`);
  return exitCode ?? ExitCode.INTERNAL;
}

/** Run `fn` holding KEY the way `options.hold` says, as `withLock` does for the mutex. */
function withHolding(
  locks: LockManager,
  options: RunOptions,
  fn: (lease: Lease) => Promise<void>,
  withOptions: WithLockOptions,
): Promise<void> {
  const { key, hold } = options;
  if (hold === 'exclusive') return locks.withLock(key, fn, withOptions);
  if (hold === 'shared') return locks.readWrite(key).withRead(fn, withOptions);
  return locks.semaphore(key, hold).withPermit(fn, withOptions);
}

/** Exit 75, naming the holder where the store can tell. */
async function notAcquiredError(locks: LockManager, options: RunOptions): Promise<CliError> {
  const holder = await locks.inspect(options.key).catch(() => null);
  const heldBy =
    holder === null
      ? ''
      : holder.holders.length > 1
        ? ` by ${holder.holders.length} ${holder.mode} holders`
        : ` by token ${holder.token.slice(0, TOKEN_PREFIX_LENGTH)}… (fence ${holder.fence}, ` +
          `${formatRemaining(holder.remainingMs)} left)`;
  return new CliError(
    options.conflictExitCode,
    options.waitMs === 0
      ? `lock "${options.key}" is held${heldBy}; not waiting (--no-wait)`
      : `lock "${options.key}" was not acquired within ${formatRemaining(options.waitMs)}` +
          (heldBy === '' ? '' : `; it is held${heldBy}`),
  );
}

/**
 * `distlock run KEY` without a command: hold the lock until a signal (`stop` aborts), then let it
 * be released. Resolves with 0, or 76 if the lock is lost first.
 */
async function holdUntilSignal(
  locks: LockManager,
  lease: Lease,
  key: string,
  stop: AbortSignal,
): Promise<number> {
  let lostBecause: string | undefined;
  let onEnd = () => undefined as void;
  const ended = new Promise<void>((resolve) => (onEnd = resolve));
  const onLeaseLost = () => {
    const reason: unknown = lease.signal.reason;
    lostBecause ??= reason instanceof LockLostError ? reason.reason : 'lost';
    onEnd();
  };
  stop.addEventListener('abort', onEnd, { once: true });
  lease.signal.addEventListener('abort', onLeaseLost, { once: true });
  // Learn of a broken lock at once where the store announces changes.
  const unwatch = await watchForTheft(locks, lease, () => {
    lostBecause ??= 'released or taken by someone else';
    onEnd();
  });
  try {
    if (stop.aborted) onEnd();
    if (lease.signal.aborted) onLeaseLost();
    process.stdout.write(
      `holding "${key}" (fence ${lease.fence}); SIGINT (Ctrl-C), SIGTERM or SIGHUP releases it\n`,
    );
    await ended;
  } finally {
    stop.removeEventListener('abort', onEnd);
    lease.signal.removeEventListener('abort', onLeaseLost);
    await Promise.resolve(unwatch?.()).catch(() => undefined);
  }
  if (lostBecause !== undefined) {
    printError(`lock "${key}" was lost (${lostBecause})`);
    return ExitCode.LOCK_LOST;
  }
  return ExitCode.OK;
}

/**
 * Watch the lease while the command runs; terminate the command when the lease is lost or about to
 * be. Resolves with distlock's exit code once the command has exited.
 */
async function superviseUntilExit(
  locks: LockManager,
  lease: Lease,
  child: SupervisedChild,
  supervision: Supervision,
  options: RunOptions,
): Promise<number> {
  const { graceMs } = supervision;
  let lostBecause: string | undefined;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const marginMs = killMarginMs(options.ttlMs);
  // The earliest moment the store could let someone else in, less the margin.
  const killDeadline = () => Math.min(lease.expiresAt, supervision.storeDeadline()) - marginMs;

  const loseLock = (because: string, killAt: number) => {
    if (lostBecause !== undefined || child.exit !== undefined) return;
    lostBecause = because;
    child.terminate(killAt);
  };

  const onLeaseLost = () => {
    const reason: unknown = lease.signal.reason;
    const because = reason instanceof LockLostError ? reason.reason : 'lost';
    loseLock(because, Math.min(Date.now() + graceMs, killDeadline()));
  };
  lease.signal.addEventListener('abort', onLeaseLost, { once: true });

  // Renewal is late when the lease has only `grace + margin` left: start terminating so that the
  // SIGKILL lands before the local deadline, before the store can hand the key to anyone else.
  const checkDeadline = () => {
    const leftMs = killDeadline() - Date.now();
    if (leftMs <= graceMs) {
      loseLock('not renewed in time', killDeadline());
      return;
    }
    watchdog = setTimeout(checkDeadline, leftMs - graceMs);
    watchdog.unref();
  };
  checkDeadline();

  // Where the store announces changes, learn of a broken lock at once instead of at the next
  // renewal (up to ttl/3 later).
  const unwatch = await watchForTheft(locks, lease, () =>
    loseLock('released or taken by someone else', Math.min(Date.now() + graceMs, killDeadline())),
  );

  try {
    const exit = await child.exited;
    if (lostBecause !== undefined) {
      printError(
        `lock "${options.key}" was lost (${lostBecause}); the command was terminated` +
          (exit.signal ? ` (${exit.signal})` : ` (it exited with ${exit.code ?? '?'})`),
      );
      return ExitCode.LOCK_LOST;
    }
    return exitCodeOf(exit);
  } finally {
    if (watchdog !== undefined) clearTimeout(watchdog);
    lease.signal.removeEventListener('abort', onLeaseLost);
    child.dispose();
    await Promise.resolve(unwatch?.()).catch(() => undefined);
  }
}

/** Subscribe to the key's changes, if the backend can, and call `onTheft` if we no longer hold it. */
async function watchForTheft(
  locks: LockManager,
  lease: Lease,
  onTheft: () => void,
): Promise<(() => void | Promise<void>) | undefined> {
  const backend = locks.backend;
  if (!backend.watch) return undefined;
  let checking = false;
  let checkAgain = false;
  let stopped = false;
  const check = async () => {
    if (stopped) return;
    if (checking) {
      checkAgain = true; // a change during a check: look once more when it is done
      return;
    }
    checking = true;
    try {
      do {
        checkAgain = false;
        const holder = await locks.inspect(lease.key);
        // A shared key has several holders: ours must still be among them.
        const held = holder?.holders.some((h) => h.token === lease.token) ?? false;
        if (!stopped && !held) onTheft();
      } while (checkAgain && !stopped);
    } catch {
      // The store is unreachable: renewal and the local deadline deal with that.
    } finally {
      checking = false;
    }
  };
  try {
    // Keys reach the backend with the manager's prefix, which is empty here.
    const unwatch = await backend.watch(lease.key, () => void check());
    return () => {
      stopped = true;
      return unwatch();
    };
  } catch {
    return undefined;
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0;
}
