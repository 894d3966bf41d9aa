import type { ResolvedRetryOptions } from './options.js';

/**
 * Delay before attempt `attempt + 1` (attempt counts from 1): exponential growth capped at
 * `maxDelayMs`, with the `jitter` fraction of it randomised so that waiters spread out.
 */
export function backoffDelay(
  attempt: number,
  retry: ResolvedRetryOptions,
  random = Math.random,
): number {
  const base = Math.min(retry.maxDelayMs, retry.delayMs * retry.factor ** Math.max(0, attempt - 1));
  const jitterPart = base * retry.jitter;
  return Math.round(base - jitterPart + random() * jitterPart);
}
