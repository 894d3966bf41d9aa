import type { LockBackend } from '../../src/core/backend.js';
import { BackendUnavailableError } from '../../src/core/errors.js';

/**
 * Wraps a backend so a test can make its calls fail as if the store were unreachable, or stall
 * them — the faults the core must survive. (The store itself stays real: the memory backend.)
 */
export function faultable(inner: LockBackend) {
  const state = { down: false, stallMs: 0 };
  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (state.stallMs > 0) await new Promise((r) => setTimeout(r, state.stallMs));
    if (state.down) throw new BackendUnavailableError('store unreachable (injected)');
    return call();
  };
  const backend: LockBackend = {
    name: `faultable-${inner.name}`,
    capabilities: { ...inner.capabilities, fifo: false },
    tryAcquire: (req, op) => guard(() => inner.tryAcquire(req, op)),
    extend: (lease, ttl, op) => guard(() => inner.extend(lease, ttl, op)),
    release: (lease, op) => guard(() => inner.release(lease, op)),
    inspect: (key, op) => guard(() => inner.inspect(key, op)),
    close: () => inner.close(),
  };
  return { backend, state };
}
