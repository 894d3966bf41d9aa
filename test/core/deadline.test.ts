import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deadline } from '../../src/core/abort.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const timeout = () => new Error('timed out');

describe('deadline', () => {
  it('tells subscribers the timeout reason when the time is up, without building a signal', async () => {
    const wait = deadline(100, [], timeout);
    const seen: unknown[] = [];
    wait.onAbort((reason) => seen.push(reason));
    await vi.advanceTimersByTimeAsync(99);
    expect(seen).toEqual([]);
    expect(wait.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toHaveLength(1);
    expect((seen[0] as Error).message).toBe('timed out');
    expect(wait.expired).toBe(true);
    expect(wait.aborted).toBe(true);
    // A signal read afterwards is already aborted, with the same reason.
    expect(wait.signal.aborted).toBe(true);
    expect(wait.signal.reason).toBe(seen[0]);
    wait.dispose();
  });

  it("ends with a parent's reason, for subscribers and the signal alike", () => {
    const parent = new AbortController();
    const wait = deadline(10_000, [undefined, parent.signal], timeout);
    const seen: unknown[] = [];
    wait.onAbort((reason) => seen.push(reason));
    const signal = wait.signal;
    parent.abort('closed');
    expect(seen).toEqual(['closed']);
    expect(signal.reason).toBe('closed');
    expect(wait.expired).toBe(false);
    wait.dispose();
  });

  it('calls a late subscriber at once, and an unsubscribed one never', async () => {
    const parent = new AbortController();
    parent.abort('already');
    const ended = deadline(10_000, [parent.signal], timeout);
    const late: unknown[] = [];
    ended.onAbort((reason) => late.push(reason));
    expect(late).toEqual(['already']);

    const wait = deadline(50, [], timeout);
    const gone: unknown[] = [];
    const unsubscribe = wait.onAbort((reason) => gone.push(reason));
    unsubscribe();
    await vi.advanceTimersByTimeAsync(100);
    expect(gone).toEqual([]);
    expect(wait.aborted).toBe(true);
  });

  it('leaves no timer and no parent listener behind once disposed', async () => {
    const parent = new AbortController();
    const wait = deadline(1_000, [parent.signal], timeout);
    const seen: unknown[] = [];
    wait.onAbort((reason) => seen.push(reason));
    expect(vi.getTimerCount()).toBe(1);
    wait.dispose();
    expect(vi.getTimerCount()).toBe(0);
    parent.abort('later');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(seen).toEqual([]);
  });

  it('can be ended directly, before or after anything was armed', async () => {
    const early = deadline(100, [], timeout);
    early.end('closed');
    expect(early.aborted).toBe(true);
    const seen: unknown[] = [];
    early.onAbort((reason) => seen.push(reason));
    expect(seen).toEqual(['closed']);
    expect(early.signal.reason).toBe('closed');
    await vi.advanceTimersByTimeAsync(200);
    expect(early.expired).toBe(false);
    expect(vi.getTimerCount()).toBe(0);

    const armed = deadline(100, [], timeout);
    armed.onAbort((reason) => seen.push(reason));
    armed.end('closed later');
    expect(seen).toEqual(['closed', 'closed later']);
    await vi.advanceTimersByTimeAsync(200);
    expect(armed.expired).toBe(false);
    armed.dispose();
  });
});
