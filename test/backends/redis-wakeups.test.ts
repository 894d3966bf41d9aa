import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PopOutcome } from '../../src/backends/redis/connection.js';
import { Wakeups } from '../../src/backends/redis/wakeups.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const reply: PopOutcome = { kind: 'reply', value: ['list', 'g|7|1000'] };

/** A pop still in flight, and the function that settles it. */
function pendingPop(): { popped: Promise<PopOutcome>; pop: (outcome: PopOutcome) => void } {
  let pop!: (outcome: PopOutcome) => void;
  const popped = new Promise<PopOutcome>((resolve) => (pop = resolve));
  return { popped, pop };
}

describe('Redis wait events', () => {
  it("delivers the pop's outcome, or 'poll' when the timer runs out first", async () => {
    const wakeups = new Wakeups();
    const { popped, pop } = pendingPop();
    const first = wakeups.next(popped, 100);
    await vi.advanceTimersByTimeAsync(100);
    expect(await first).toBe('poll');
    const second = wakeups.next(popped, 100);
    pop(reply);
    expect(await second).toBe(reply);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps an outcome that came while the loop was busy for the next turn', async () => {
    const wakeups = new Wakeups();
    const { popped, pop } = pendingPop();
    const first = wakeups.next(popped, 50);
    await vi.advanceTimersByTimeAsync(50);
    expect(await first).toBe('poll');
    // The loop is now busy with its poll step: nobody waits when the pop settles.
    pop(reply);
    await Promise.resolve();
    await Promise.resolve();
    expect(await wakeups.next(popped, 1_000)).toBe(reply);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a pending and every later turn with the first abort reason', async () => {
    const wakeups = new Wakeups();
    const pending = wakeups.next(new Promise<PopOutcome>(() => undefined), 10_000);
    wakeups.abort('deadline');
    wakeups.abort('closed');
    expect(await pending).toBe('abort');
    expect(await wakeups.next(undefined, 10)).toBe('abort');
    expect(wakeups.reason).toBe('deadline');
    expect(vi.getTimerCount()).toBe(0);
  });
});
