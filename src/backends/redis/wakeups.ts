/**
 * What a queued Redis wait reacts to, in one object per wait: its `BLPOP`'s outcome, the poll
 * timer, or an abort (the caller's deadline or abort, or the backend's `close()`).
 */

import type { PopOutcome } from './connection.js';

/**
 * The events of one queued wait. One object per wait instead of an AbortController plus a
 * listener per loop turn: on a contended lock this runs for every acquisition.
 */
export class Wakeups {
  aborted = false;
  reason: unknown = undefined;
  #resolve: ((event: PopOutcome | 'poll' | 'abort') => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The pop listened to (each pop once), and its outcome if it came while nobody waited. */
  #pop: Promise<PopOutcome> | undefined;
  #popped: PopOutcome | undefined;
  readonly #onTimer = (): void => this.#fire('poll');
  readonly #onPop = (outcome: PopOutcome): void => {
    if (this.#resolve) this.#fire(outcome);
    else this.#popped = outcome; // the loop is busy (a poll step): the next turn reads it
  };

  /** End the wait with `reason` (the first reason wins). */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#fire('abort');
  }

  /** The next thing to act on: `pop`'s outcome, `'poll'` after `pollDelayMs`, or `'abort'`. */
  next(
    pop: Promise<PopOutcome> | undefined,
    pollDelayMs: number,
  ): Promise<PopOutcome | 'poll' | 'abort'> {
    if (this.aborted) return Promise.resolve('abort');
    if (pop !== this.#pop) {
      this.#pop = pop;
      this.#popped = undefined;
      void pop?.then(this.#onPop);
    } else if (this.#popped) {
      const outcome = this.#popped;
      this.#popped = undefined;
      return Promise.resolve(outcome);
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(this.#onTimer, pollDelayMs);
      this.#timer.unref?.();
    });
  }

  #fire(event: PopOutcome | 'poll' | 'abort'): void {
    const resolve = this.#resolve;
    if (!resolve) return;
    this.#resolve = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    resolve(event);
  }
}
