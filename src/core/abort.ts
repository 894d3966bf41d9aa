/**
 * Abort helpers: every wait in distlock is cancellable and leaves no timer or listener behind.
 */

/** Throw the signal's reason if it is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/**
 * Resolve after `ms`, or early when `wake` is called; reject with `signal.reason` on abort.
 * The timer keeps the process alive, like any pending I/O: a process whose only work is waiting
 * for a lock must not exit mid-wait (the files backend has no socket to hold it open).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A signal that aborts when a parent aborts or when `ms` elapse, with `timeoutReason()` then. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True if the deadline (not a parent) caused the abort. */
  readonly expired: boolean;
  /** Remove the timer and the listeners on the parents. Always call it, in `finally`. */
  dispose(): void;
}

/**
 * One controller for a whole wait, following any number of parent signals (the caller's, the
 * manager's close) — cheaper than `AbortSignal.any`, which matters on every contended acquire.
 */
export function deadline(
  ms: number,
  parents: ReadonlyArray<AbortSignal | undefined>,
  timeoutReason: () => unknown,
): Deadline {
  const controller = new AbortController();
  let expired = false;
  const listening: AbortSignal[] = [];
  const onParentAbort = (event: Event) => controller.abort((event.target as AbortSignal).reason);
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    parent.addEventListener('abort', onParentAbort, { once: true });
    listening.push(parent);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (Number.isFinite(ms) && !controller.signal.aborted) {
    timer = setTimeout(() => {
      expired = true;
      controller.abort(timeoutReason());
    }, ms);
  }
  return {
    signal: controller.signal,
    get expired() {
      return expired;
    },
    dispose() {
      if (timer) clearTimeout(timer);
      for (const parent of listening) parent.removeEventListener('abort', onParentAbort);
    },
  };
}
