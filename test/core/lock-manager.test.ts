import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BackendUnavailableError,
  createLocks,
  LockLostError,
  LockTimeoutError,
  type LockBackend,
  type LockEvent,
} from '../../src/index.js';
import { MemoryStore, memoryBackend } from '../../src/backends/memory/index.js';
import { backoffDelay } from '../../src/core/backoff.js';
import { DEFAULTS } from '../../src/core/options.js';
import { faultable } from './flaky-backend.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('local deadline', () => {
  it('is the send time plus the TTL less the drift margin, and the signal fires exactly then', async () => {
    const locks = createLocks({ backend: memoryBackend(), ttlMs: 10_000 });
    const lease = await locks.acquire('k');
    // drift = floor(10_000 * 0.01) + 2 = 102 ms
    expect(lease.expiresAt).toBe(1_000_000 + 10_000 - 102);
    await vi.advanceTimersByTimeAsync(10_000 - 103);
    expect(lease.lost).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(lease.lost).toBe(true);
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
  });

  it('a signal read before the deadline fires exactly at it (its timer is armed on first read)', async () => {
    const locks = createLocks({ backend: memoryBackend(), ttlMs: 10_000 });
    const lease = await locks.acquire('k');
    await vi.advanceTimersByTimeAsync(5_000);
    let firedAt: number | undefined;
    lease.signal.addEventListener('abort', () => (firedAt = Date.now()));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(firedAt).toBe(lease.expiresAt);
    expect(lease.signal.reason).toBeInstanceOf(LockLostError);
  });

  it('an unwatched lease that expired is lost for extend, and close() does not release it', async () => {
    const backend = memoryBackend();
    const release = vi.spyOn(backend, 'release');
    const locks = createLocks({ backend, ttlMs: 1_000 });
    const expired = await locks.acquire('expired');
    const kept = await locks.acquire('kept', { ttlMs: 60_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(expired.extend()).rejects.toBeInstanceOf(LockLostError);
    await vi.advanceTimersByTimeAsync(2_000); // a sweep forgets it too
    await locks.close();
    expect(release.mock.calls.map(([ref]) => ref.key)).toEqual(['kept']);
    expect(kept.lost).toBe(false);
  });

  it('fires while the store is unreachable, before the store lets anyone else in', async () => {
    const store = new MemoryStore();
    const { backend, state } = faultable(memoryBackend({ store }));
    const locks = createLocks({ backend, ttlMs: 3_000 });
    const other = createLocks({ backend: memoryBackend({ store }) });
    let fn: Promise<string> | undefined;
    const done = locks.withLock('k', async (lease) => {
      state.down = true; // every renewal from now on fails
      fn = new Promise((resolve) => lease.signal.addEventListener('abort', () => resolve('lost')));
      return fn;
    });
    await vi.advanceTimersByTimeAsync(3_000 - 32 - 1);
    expect(await other.tryAcquire('k')).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(await done).toBe('lost');
    // the store's own TTL ends 32 ms later; only then can another client take the lock
    expect(await other.tryAcquire('k')).toBeNull();
    await vi.advanceTimersByTimeAsync(32);
    expect(await other.tryAcquire('k')).not.toBeNull();
  });
});

describe('withLock renewal', () => {
  it('renews every third of the TTL, and retries transient failures until the store answers', async () => {
    const { backend, state } = faultable(memoryBackend());
    const events: LockEvent[] = [];
    const locks = createLocks({ backend, ttlMs: 900, onEvent: (e) => events.push(e) });
    const result = locks.withLock('k', async (lease) => {
      await vi.advanceTimersByTimeAsync(300); // first renewal
      state.down = true;
      await vi.advanceTimersByTimeAsync(400); // renewal fails, retried sooner
      state.down = false;
      await vi.advanceTimersByTimeAsync(100); // a retry gets through before the deadline
      await vi.advanceTimersByTimeAsync(3_000);
      return lease.lost;
    });
    expect(await result).toBe(false);
    const extended = events.filter((e) => e.type === 'extended').length;
    expect(extended).toBeGreaterThanOrEqual(10);
    expect(events.at(-1)).toMatchObject({ type: 'released', outcome: 'released' });
  });

  it('always releases, also when fn throws, and rethrows fn’s error', async () => {
    const locks = createLocks({ backend: memoryBackend() });
    const boom = new Error('boom');
    await expect(locks.withLock('k', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(await locks.inspect('k')).toBeNull();
  });
});

describe('waiting', () => {
  it('gives up after retry.tries attempts', async () => {
    const locks = createLocks({
      backend: faultable(memoryBackend()).backend,
      retry: { tries: 3, delayMs: 10 },
    });
    const other = createLocks({ backend: locks.backend });
    await other.acquire('k');
    const attempt = locks.acquire('k', { waitMs: 60_000 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await attempt).toBeInstanceOf(LockTimeoutError);
  });

  it('fails fast when the store is down at the first attempt', async () => {
    const { backend, state } = faultable(memoryBackend());
    state.down = true;
    await expect(createLocks({ backend }).acquire('k')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      retryable: true,
    });
  });

  it('keeps waiting through transient store failures once the wait has begun', async () => {
    const store = new MemoryStore();
    const { backend, state } = faultable(memoryBackend({ store }));
    const holder = await createLocks({ backend: memoryBackend({ store }) }).acquire('k', {
      ttlMs: 300,
    });
    const locks = createLocks({ backend });
    const attempt = locks.acquire('k', { waitMs: 2_000 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    state.down = true;
    await vi.advanceTimersByTimeAsync(400);
    state.down = false;
    await vi.advanceTimersByTimeAsync(600);
    const lease = await attempt;
    expect(lease).toMatchObject({ key: 'k' });
    expect((lease as typeof holder).fence).toBeGreaterThan(holder.fence);
  });

  it('an abort during an in-flight attempt rejects at once and gives back a late success', async () => {
    const store = new MemoryStore();
    const { backend, state } = faultable(memoryBackend({ store }));
    const locks = createLocks({ backend });
    state.stallMs = 1_000;
    const controller = new AbortController();
    const attempt = locks.acquire('k', { signal: controller.signal }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(new Error('stop'));
    expect(await attempt).toMatchObject({ message: 'stop' });
    await vi.advanceTimersByTimeAsync(2_000); // the stalled attempt lands, then its release
    expect(await createLocks({ backend: memoryBackend({ store }) }).inspect('k')).toBeNull();
  });

  it('retries a failed queued acquire under a fresh token, so a late undo of the old one cannot remove the new grant', async () => {
    const store = new MemoryStore();
    const inner = memoryBackend({ store });
    const undo: Array<() => Promise<unknown>> = [];
    let calls = 0;
    // A queued backend whose first answer is lost (the grant happened, the reply timed out) and
    // which later undoes that attempt by token, and which re-validates a lock already held by
    // the same token as granted (as the Redis backend does).
    const backend: LockBackend = {
      ...inner,
      name: 'late-undo',
      async acquire(request, op) {
        calls += 1;
        const holder = await inner.inspect(request.key);
        if (holder?.token === request.token) return { acquired: true, fence: holder.fence };
        const result = await inner.acquire!(request, op);
        if (calls === 1) {
          undo.push(() => inner.release({ key: request.key, token: request.token }));
          throw new BackendUnavailableError('reply lost (injected)');
        }
        return result;
      },
    };
    const locks = createLocks({ backend, retry: { delayMs: 10 } });
    const acquiring = locks.acquire('k', { waitMs: 5_000 });
    await vi.advanceTimersByTimeAsync(50);
    await undo[0]!(); // the late undo of the first attempt lands
    await vi.advanceTimersByTimeAsync(50);
    const lease = await acquiring;
    expect((await inner.inspect('k'))?.token).toBe(lease.token);
    expect(lease.lost).toBe(false);
  });

  it('does not swap a caller-chosen token: the transient error is thrown instead', async () => {
    const inner = memoryBackend();
    const backend: LockBackend = {
      ...inner,
      async acquire() {
        throw new BackendUnavailableError('down (injected)');
      },
    };
    const locks = createLocks({ backend });
    await expect(locks.acquire('k', { token: 'mine', waitMs: 1_000 })).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
  });

  it('backoff grows by factor, is capped, and jitters only the configured fraction', () => {
    const retry = { ...DEFAULTS.retry, delayMs: 100, maxDelayMs: 1_000, factor: 2, jitter: 0.5 };
    expect(backoffDelay(1, retry, () => 0)).toBe(50);
    expect(backoffDelay(1, retry, () => 1)).toBe(100);
    expect(backoffDelay(3, retry, () => 1)).toBe(400);
    expect(backoffDelay(10, retry, () => 1)).toBe(1_000);
    expect(backoffDelay(10, { ...retry, jitter: 0 }, () => 0.3)).toBe(1_000);
  });
});

describe("a backend's lost signal", () => {
  it('may be shared by many leases: one listener for all, released leases are not marked lost', async () => {
    const inner = memoryBackend();
    const shared = new AbortController();
    const backend: LockBackend = {
      ...inner,
      name: 'shared-lost',
      async tryAcquire(request, op) {
        const result = await inner.tryAcquire(request, op);
        return result.acquired ? { ...result, lost: shared.signal } : result;
      },
      async acquire(request, op) {
        return { ...(await inner.acquire!(request, op)), lost: shared.signal };
      },
    };
    const locks = createLocks({ backend, ttlMs: 60_000 });
    for (let i = 0; i < 50; i++) await (await locks.acquire(`done-${i}`)).release();
    // One listener per signal for the manager, not one per lease (nor one left per release).
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(1);
    const held = await locks.acquire('held');
    const alsoHeld = await locks.acquire('also-held');
    const released = await locks.acquire('released');
    await released.release();
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(1);
    shared.abort(new Error('session gone'));
    expect(held.lost).toBe(true);
    expect(held.signal.reason).toBeInstanceOf(LockLostError);
    expect((held.signal.reason as LockLostError).reason).toBe('unreachable');
    expect((held.signal.reason as LockLostError).key).toBe('held');
    expect(alsoHeld.lost).toBe(true);
    expect((alsoHeld.signal.reason as LockLostError).key).toBe('also-held');
    expect(released.lost).toBe(false);
    // A signal that is already aborted marks a new lease lost at once.
    const late = await locks.acquire('late');
    expect(late.lost).toBe(true);
  });
});

describe('events', () => {
  it('a throwing onEvent handler never breaks locking', async () => {
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const locks = createLocks({
      backend: memoryBackend(),
      onEvent: () => {
        throw new Error('handler bug');
      },
    });
    const lease = await locks.acquire('k');
    expect(await lease.release()).toBe('released');
    expect(warning).toHaveBeenCalled();
    warning.mockRestore();
  });
});
