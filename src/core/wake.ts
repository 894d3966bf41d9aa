import { sleep } from './abort.js';

/**
 * A latch between a store notification and a waiting loop: a `notify()` that arrives while the
 * loop is busy (mid-attempt) is remembered, so the next `wait` returns at once instead of sleeping
 * through the release it announced.
 */
export class WakeLatch {
  #pending = false;
  #resolve: (() => void) | undefined;

  notify = (): void => {
    this.#pending = true;
    this.#resolve?.();
  };

  /** Sleep up to `ms`, returning early on `notify()`; rejects with `signal.reason` on abort. */
  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return;
    }
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([
        sleep(ms, controller.signal),
        new Promise<void>((resolve) => {
          this.#resolve = resolve;
        }),
      ]);
      signal.throwIfAborted();
    } finally {
      this.#resolve = undefined;
      this.#pending = false;
      signal.removeEventListener('abort', onAbort);
      controller.abort(); // stop the sleep timer if the notification won the race
    }
  }
}
