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
  /**
   * Call `listener` with the reason when the deadline ends (at once if it has), without building
   * `signal`: a controller per wait is a measurable share of a contended acquire. Returns a
   * function that removes the listener. Bound, so that with `signal` the deadline is itself the
   * options object of a queued backend acquire (`QueuedAcquireOptions`): no separate one is built.
   */
  readonly onAbort: (listener: (reason: unknown) => void) => () => void;
  /** End the deadline now with `reason` (as a parent's abort would); no-op once ended. */
  end(reason: unknown): void;
  /** Remove the timer and the listeners on the parents. Always call it, in `finally`. */
  dispose(): void;
}

/**
 * One deadline for a whole wait, following any number of parent signals (the caller's, the
 * manager's close) — cheaper than `AbortSignal.any`, which matters on every contended acquire.
 * The timer and the parent listeners are only set up when `signal` is first read or a listener
 * subscribes, and the controller only when `signal` is read: a queued backend does neither
 * until it has to wait, so an acquire granted by its first request pays for none of them.
 */
export function deadline(
  ms: number,
  parents: ReadonlyArray<AbortSignal | undefined>,
  timeoutReason: () => unknown,
  /** When the `ms` start, if the caller already read the clock. @default now */
  startedAt: number = Date.now(),
): Deadline {
  return new LazyDeadline(ms, parents, timeoutReason, startedAt);
}

const NOTHING_TO_REMOVE = (): void => undefined;

/** `parents` of a deadline that follows no signal, shared rather than an empty array per wait. */
export const NO_PARENTS: ReadonlyArray<AbortSignal | undefined> = Object.freeze([]);

class LazyDeadline implements Deadline {
  readonly #ms: number;
  readonly #parents: ReadonlyArray<AbortSignal | undefined>;
  readonly #timeoutReason: () => unknown;
  readonly #startedAt: number;
  #controller: AbortController | undefined;
  #armed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #listening: AbortSignal[] | undefined;
  #onParentAbort: ((event: Event) => void) | undefined;
  #listeners: Array<(reason: unknown) => void> | undefined;
  #ended = false;
  #reason: unknown;
  #expired = false;
  #disposed = false;

  constructor(
    ms: number,
    parents: ReadonlyArray<AbortSignal | undefined>,
    timeoutReason: () => unknown,
    startedAt: number,
  ) {
    this.#startedAt = startedAt;
    this.#ms = ms;
    this.#parents = parents;
    this.#timeoutReason = timeoutReason;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = new AbortController();
      this.#controller = controller;
      this.#arm();
      if (this.#ended) controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get expired(): boolean {
    return this.#expired;
  }

  get aborted(): boolean {
    if (this.#armed || this.#ended) return this.#ended;
    for (const parent of this.#parents) if (parent?.aborted) return true;
    return Date.now() - this.#startedAt >= this.#ms;
  }

  readonly onAbort = (listener: (reason: unknown) => void): (() => void) => {
    this.#arm();
    if (this.#ended) {
      listener(this.#reason);
      return NOTHING_TO_REMOVE;
    }
    const listeners = (this.#listeners ??= []);
    listeners.push(listener);
    return () => {
      const index = listeners.indexOf(listener);
      if (index >= 0) listeners.splice(index, 1);
    };
  };

  dispose(): void {
    this.#disposed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#listeners = undefined;
    if (!this.#listening) return;
    for (const parent of this.#listening) parent.removeEventListener('abort', this.#onParentAbort!);
  }

  end(reason: unknown): void {
    this.#end(reason);
  }

  #end(reason: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener(reason);
  }

  #expire(): void {
    if (this.#ended) return;
    this.#expired = true;
    this.#end(this.#timeoutReason());
  }

  /** Start the timer and listen to the parents (once), or end at once if that is due. */
  #arm(): void {
    if (this.#armed) return;
    this.#armed = true;
    if (this.#ended) return; // ended by end() before anything was armed
    for (const parent of this.#parents) {
      if (parent?.aborted) {
        this.#end(parent.reason);
        return;
      }
    }
    // Armed after dispose (nothing should): stays pending, with no timer or listener behind.
    if (this.#disposed) return;
    const remainingMs = this.#ms - (Date.now() - this.#startedAt);
    if (Number.isFinite(this.#ms)) {
      if (remainingMs <= 0) {
        this.#expire();
        return;
      }
      this.#timer = setTimeout(() => this.#expire(), remainingMs);
    }
    this.#listening = [];
    const onParentAbort = (event: Event): void => {
      this.#end((event.target as AbortSignal).reason);
    };
    this.#onParentAbort = onParentAbort;
    for (const parent of this.#parents) {
      if (!parent) continue;
      parent.addEventListener('abort', onParentAbort, { once: true });
      this.#listening.push(parent);
    }
  }
}
