/**
 * A stand-in for the payment provider: confirming a payment is a network call that takes a few
 * milliseconds, with jitter. That wait, between reading the account and writing it back, is the
 * window in which another worker can read the same (soon stale) account.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Payment } from './model.js';

/** Confirms payments after a random delay in `[minMs, maxMs]`. */
export class PaymentProvider {
  readonly #minMs: number;
  readonly #maxMs: number;

  constructor(delayMs: { readonly min: number; readonly max: number }) {
    this.#minMs = delayMs.min;
    this.#maxMs = delayMs.max;
  }

  /** Confirm that `payment` cleared. */
  async confirm(_payment: Payment): Promise<void> {
    await sleep(this.#minMs + Math.random() * (this.#maxMs - this.#minMs));
  }
}
