/** The rules of the lock kinds (core/kinds.ts) that memory and files call and other stores mirror. */
import { describe, expect, it } from 'vitest';
import {
  canHold,
  checkLimit,
  claimOf,
  EXCLUSIVE,
  grantable,
  permit,
  READER,
  validateLimit,
} from '../../src/core/kinds.js';
import { InvalidArgumentError, LimitMismatchError } from '../../src/core/errors.js';

describe('canHold', () => {
  it('lets an exclusive claim hold only alone', () => {
    expect(canHold([], EXCLUSIVE)).toBe(true);
    expect(canHold([READER], EXCLUSIVE)).toBe(false);
    expect(canHold([EXCLUSIVE], EXCLUSIVE)).toBe(false);
  });

  it('lets shared claims hold beside each other up to their limit, never beside an exclusive one', () => {
    expect(canHold([READER, READER, READER], READER)).toBe(true);
    expect(canHold([EXCLUSIVE], READER)).toBe(false);
    expect(canHold([permit(2)], permit(2))).toBe(true);
    expect(canHold([permit(2), permit(2)], permit(2))).toBe(false);
  });

  it('lets nobody pass a waiter ahead of it', () => {
    expect(canHold([READER], READER, [EXCLUSIVE])).toBe(false);
    expect(canHold([], EXCLUSIVE, [READER])).toBe(false);
  });
});

describe('grantable', () => {
  it('hands a free key to the batch of readers at the head, up to the next writer', () => {
    const queue = [READER, READER, EXCLUSIVE, READER];
    expect(grantable([], queue)).toEqual([READER, READER]);
  });

  it('hands a key with free permits to as many waiters as fit, in order', () => {
    const a = permit(3);
    const b = permit(3);
    const c = permit(3);
    expect(grantable([permit(3)], [a, b, c])).toEqual([a, b]);
  });

  it('hands a key to one writer at a time, and to nobody while it is held', () => {
    expect(grantable([], [EXCLUSIVE, EXCLUSIVE])).toEqual([EXCLUSIVE]);
    expect(grantable([READER], [EXCLUSIVE, READER])).toEqual([]);
  });
});

describe('limits', () => {
  it('refuse a shared claim whose limit differs from a holder or waiter of the key', () => {
    expect(() => checkLimit('k', permit(3), [permit(4)])).toThrow(LimitMismatchError);
    expect(() => checkLimit('k', READER, [permit(4)])).toThrow(LimitMismatchError);
    expect(() => checkLimit('k', permit(3), [EXCLUSIVE, permit(3)])).not.toThrow();
    expect(() => checkLimit('k', EXCLUSIVE, [permit(3)])).not.toThrow();
  });

  it('validate a semaphore limit', () => {
    expect(validateLimit(1)).toBe(1);
    for (const bad of [0, -1, 1.5, Infinity, Number.NaN, 2 ** 31, '2']) {
      expect(() => validateLimit(bad)).toThrow(InvalidArgumentError);
    }
  });

  it('read a request without a mode as exclusive, a shared one without a limit as a reader', () => {
    expect(claimOf({})).toBe(EXCLUSIVE);
    expect(claimOf({ mode: 'shared' })).toEqual(READER);
    expect(claimOf({ mode: 'shared', limit: 3 })).toEqual(permit(3));
  });
});
