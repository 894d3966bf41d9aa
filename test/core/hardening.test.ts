/**
 * The core's answers to a store that fails or never answers (issue #13): the first attempt is
 * bounded by the wait, an unreachable store fails at once, a store lost mid-wait is retried until
 * the deadline and the timeout names the last store error, every single call is bounded by the
 * operation timeout, and ill-formed keys are refused.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BackendUnavailableError,
  createLocks,
  InvalidArgumentError,
  LockTimeoutError,
  type LockBackend,
} from '../../src/index.js';
import { MemoryStore, memoryBackend } from '../../src/backends/memory/index.js';
import { faultable } from './flaky-backend.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

describe('the first attempt', () => {
  it('is bounded by waitMs when the store never answers it', async () => {
    const backend: LockBackend = { ...memoryBackend(), acquire: undefined, tryAcquire: never };
    const locks = createLocks({ backend });
    const attempt = locks.acquire('k', { waitMs: 1_000 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await attempt).toBeInstanceOf(LockTimeoutError);
  });

  it('of a queued backend is bounded by waitMs even if the backend ignores the deadline', async () => {
    const backend: LockBackend = { ...memoryBackend(), acquire: never };
    const locks = createLocks({ backend });
    const attempt = locks.acquire('k', { waitMs: 1_000 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_000 + 250); // the wait, then the backend's grace to leave
    expect(await attempt).toBeInstanceOf(LockTimeoutError);
  });

  it('fails at once when a queued backend cannot reach the store, with the store error', async () => {
    const down = new BackendUnavailableError('connect ECONNREFUSED 127.0.0.1:1 (injected)');
    const backend: LockBackend = {
      ...memoryBackend(),
      acquire: async () => {
        throw down;
      },
    };
    const locks = createLocks({ backend, waitMs: 10_000 });
    const started = Date.now();
    await expect(locks.acquire('k')).rejects.toBe(down);
    expect(Date.now() - started).toBe(0);
  });
});

describe('a store lost mid-wait', () => {
  it('is retried until the deadline, and the timeout carries the last store error (polling)', async () => {
    const store = new MemoryStore();
    const { backend, state } = faultable(memoryBackend({ store }));
    await createLocks({ backend: memoryBackend({ store }) }).acquire('k');
    const locks = createLocks({ backend });
    const attempt = locks.acquire('k', { waitMs: 2_000 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    state.down = true;
    await vi.advanceTimersByTimeAsync(2_000);
    const error = await attempt;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((error as LockTimeoutError).cause).toBeInstanceOf(BackendUnavailableError);
    expect(((error as LockTimeoutError).cause as Error).message).toMatch(/injected/);
  });

  it('is retried until the deadline once a queued backend has reached the store', async () => {
    const store = new MemoryStore();
    const inner = memoryBackend({ store });
    await createLocks({ backend: memoryBackend({ store }) }).acquire('k');
    let calls = 0;
    const backend: LockBackend = {
      ...inner,
      acquire(request, options) {
        calls += 1;
        options.onQueued?.();
        return Promise.reject(new BackendUnavailableError(`connection lost ${calls} (injected)`));
      },
    };
    const locks = createLocks({ backend, retry: { delayMs: 100, maxDelayMs: 100 } });
    const attempt = locks.acquire('k', { waitMs: 1_000 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_000);
    const error = await attempt;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(calls).toBeGreaterThan(3);
    expect(((error as LockTimeoutError).cause as Error).message).toMatch(/connection lost/);
  });
});

describe('the operation timeout', () => {
  it('bounds every single store call with a retryable BackendUnavailableError', async () => {
    const inner = memoryBackend();
    const locks = createLocks({ backend: inner, operationTimeoutMs: 500 });
    const lease = await locks.acquire('k');
    // From now on the store stops answering.
    Object.assign(inner, { extend: never, release: never, inspect: never, tryAcquire: never });
    const calls = [
      lease.extend(),
      lease.release(),
      locks.inspect('k'),
      locks.tryAcquire('other'),
      locks.release('k', lease.token),
    ].map((p) => p.catch((e: unknown) => e));
    await vi.advanceTimersByTimeAsync(500);
    for (const error of await Promise.all(calls)) {
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as BackendUnavailableError).retryable).toBe(true);
    }
  });

  it('is validated', () => {
    for (const operationTimeoutMs of [0, -1, 1.5, Infinity]) {
      expect(() => createLocks({ backend: memoryBackend(), operationTimeoutMs })).toThrow(
        InvalidArgumentError,
      );
    }
  });
});

describe('keys', () => {
  it('refuses a lone surrogate in a key, a prefix or a list prefix', async () => {
    const locks = createLocks({ backend: memoryBackend() });
    for (const key of ['a\uD800b', '\uDC00', 'x\uD83D']) {
      await expect(locks.acquire(key)).rejects.toMatchObject({ option: 'key' });
      await expect(locks.list(key)).rejects.toMatchObject({ option: 'prefix' });
    }
    expect(() => createLocks({ backend: memoryBackend(), prefix: 'p\uD800' })).toThrow(
      InvalidArgumentError,
    );
    // A well-formed astral character (a surrogate pair) is fine, and distinct from its neighbours.
    const lease = await locks.acquire('a😀b');
    expect(await locks.inspect('a\uFFFDb')).toBeNull();
    await lease.release();
  });
});

describe('memory backend state', () => {
  it('keeps nothing for 100,000 keys once they are free, with fences still increasing per key', async () => {
    vi.useRealTimers();
    const store = new MemoryStore();
    const locks = createLocks({ backend: memoryBackend({ store }) });
    let last = 0n;
    let increasing = true;
    for (let batch = 0; batch < 100; batch += 1) {
      const leases = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) => locks.acquire(`order:${batch * 1_000 + i}`)),
      );
      for (const lease of leases) {
        increasing &&= lease.fence > last;
        last = lease.fence;
      }
      await Promise.all(leases.map((lease) => lease.release()));
    }
    expect(increasing).toBe(true);
    expect(store.size).toBe(0);
    const again = await locks.acquire('order:7');
    expect(again.fence).toBeGreaterThan(last);
    expect(store.size).toBe(1);
    await again.release();
  });
});
