/**
 * `distlock/redlock`: one lock on a majority of N independent Redis masters (N odd, ≥ 3), the
 * Redlock algorithm (as redsync and the npm `redlock` package implement it), over ioredis.
 *
 * - Acquire goes to every node at once with one token; the lease is held only with a quorum
 *   (⌊N/2⌋+1) *and* time left: validity = TTL − time since the first request − drift > 0.
 *   Otherwise the attempt releases on every node before it answers (no self-blocking).
 * - Each node's answer waits at most `min(nodeTimeoutMs, ttlMs / 10)`: a stalled node costs at
 *   most that, and nothing once a quorum has answered.
 * - Fences (`fencing: 'quorum'`, the default) come from a majority read and write after the win:
 *   they strictly increase under Redlock's clock-drift assumption (see the README). `'none'`
 *   saves two round trips and reports `capabilities.fencing: false`.
 * - Waiters wake on any node's release (pub/sub), with the core's jittered backoff as fallback.
 *   No FIFO order, no read-write locks or semaphores (`UnsupportedError`).
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { redlockBackend } from 'distlock/redlock';
 *
 * const backend = redlockBackend({
 *   urls: ['redis://10.0.0.1:6379', 'redis://10.0.0.2:6379', 'redis://10.0.0.3:6379'],
 *   restartGuardMs: 30_000, // nodes run without persistence; 30 s is our longest TTL
 * });
 * const locks = createLocks({ backend, ttlMs: 10_000 });
 * await locks.withLock('report', async (lease) => build({ fence: lease.fence }));
 * ```
 */
import { RedlockBackend } from './backend.js';
import type { RedlockBackendOptions } from './options.js';

export { RedlockBackend } from './backend.js';
export { REDLOCK_DEFAULTS, type RedlockBackendOptions } from './options.js';

/**
 * A lock backend over N independent Redis masters. Pass your ioredis `clients` (they stay open)
 * or `urls` (the backend builds a client per URL and quits them on `close()`).
 * @throws InvalidArgumentError for a bad option: fewer than 3 nodes, an even number of them, a
 *   malformed URL, a Cluster client.
 */
export function redlockBackend(options: RedlockBackendOptions): RedlockBackend {
  return new RedlockBackend(options);
}
