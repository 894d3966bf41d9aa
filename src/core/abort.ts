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
  /** Whether `signal` is (or, once read, would be) aborted, without creating it. */
  readonly aborted: boolean;
  /** Remove the timer and the listeners on the parents. Always call it, in `finally`. */
  dispose(): void;
}

/**
 * One controller for a whole wait, following any number of parent signals (the caller's, the
 * manager's close) — cheaper than `AbortSignal.any`, which matters on every contended acquire.
 * The controller, its timer and the parent listeners are only created when `signal` is first
 * read, already aborted if a parent was or the time is up: a queued backend reads it only once it
 * has to wait, so an acquire granted by its first request pays for none of them.
 */
export function deadline(
  ms: number,
  parents: ReadonlyArray<AbortSignal | undefined>,
  timeoutReason: () => unknown,
): Deadline {
  return new LazyDeadline(ms, parents, timeoutReason);
}

class LazyDeadline implements Deadline {
  readonly #ms: number;
  readonly #parents: ReadonlyArray<AbortSignal | undefined>;
  readonly #timeoutReason: () => unknown;
  readonly #startedAt = Date.now();
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #listening: AbortSignal[] | undefined;
  #expired = false;
  #disposed = false;

  constructor(
    ms: number,
    parents: ReadonlyArray<AbortSignal | undefined>,
    timeoutReason: () => unknown,
  ) {
    this.#ms = ms;
    this.#parents = parents;
    this.#timeoutReason = timeoutReason;
  }

  get signal(): AbortSignal {
    return (this.#controller ?? this.#start()).signal;
  }

  get expired(): boolean {
    return this.#expired;
  }

  get aborted(): boolean {
    if (this.#controller) return this.#controller.signal.aborted;
    for (const parent of this.#parents) if (parent?.aborted) return true;
    return Date.now() - this.#startedAt >= this.#ms;
  }

  dispose(): void {
    this.#disposed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (!this.#listening) return;
    for (const parent of this.#listening) parent.removeEventListener('abort', this.#onParentAbort!);
  }

  #onParentAbort: ((event: Event) => void) | undefined;

  #expire(): void {
    this.#expired = true;
    this.#controller?.abort(this.#timeoutReason());
  }

  #start(): AbortController {
    const controller = new AbortController();
    this.#controller = controller;
    for (const parent of this.#parents) {
      if (!parent) continue;
      if (parent.aborted) {
        controller.abort(parent.reason);
        return controller;
      }
    }
    // Read after dispose (nothing should): an inert signal, no timer or listener left behind.
    if (this.#disposed) return controller;
    const remainingMs = this.#ms - (Date.now() - this.#startedAt);
    if (Number.isFinite(this.#ms)) {
      if (remainingMs <= 0) {
        this.#expire();
        return controller;
      }
      this.#timer = setTimeout(() => this.#expire(), remainingMs);
    }
    this.#listening = [];
    const onParentAbort = (event: Event): void => {
      controller.abort((event.target as AbortSignal).reason);
    };
    this.#onParentAbort = onParentAbort;
    for (const parent of this.#parents) {
      if (!parent) continue;
      parent.addEventListener('abort', onParentAbort, { once: true });
      this.#listening.push(parent);
    }
    return controller;
  }
}
