import { describe, expect, it } from 'vitest';
import { CliError, describeError, exitCodeFor, UsageError } from '../../src/cli/cli-error.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import {
  addSecret,
  formatRemaining,
  formatTable,
  lockToJson,
  scrub,
} from '../../src/cli/output.js';
import { killMarginMs, resolveGraceMs } from '../../src/cli/run-command.js';
import {
  BackendError,
  BackendUnavailableError,
  InvalidArgumentError,
  LockLostError,
  LockTimeoutError,
  UnsupportedError,
} from '../../src/core/errors.js';

describe('exitCodeFor', () => {
  it.each([
    [new UsageError('x'), ExitCode.USAGE],
    [new CliError(127, 'x'), 127],
    [new InvalidArgumentError('ttlMs', 'x'), ExitCode.USAGE],
    [new UnsupportedError('x'), ExitCode.USAGE],
    [new LockTimeoutError('k', 10), ExitCode.NOT_ACQUIRED],
    [
      new LockTimeoutError('k', 10, { cause: new BackendUnavailableError('down') }),
      ExitCode.UNAVAILABLE,
    ],
    [new BackendUnavailableError('down'), ExitCode.UNAVAILABLE],
    [new BackendError('bad reply'), ExitCode.UNAVAILABLE],
    [new LockLostError('k', 'expired'), ExitCode.LOCK_LOST],
    [
      Object.assign(new Error('connect ECONNREFUSED'), {
        code: 'ECONNREFUSED',
        syscall: 'connect',
      }),
      ExitCode.UNAVAILABLE,
    ],
    [Object.assign(new Error('no module'), { code: 'ERR_MODULE_NOT_FOUND' }), ExitCode.INTERNAL],
    [new TypeError('oops'), ExitCode.INTERNAL],
  ])('%s → %d', (error, code) => {
    expect(exitCodeFor(error)).toBe(code);
  });

  it('describes an error and its causes on one line, redacted, internal ones marked', () => {
    const error = new BackendUnavailableError('redis down', {
      cause: new Error('connect to redis://u:pw@h:1\nfailed'),
    });
    expect(describeError(error)).toBe('redis down: connect to redis://u:***@h:1 failed');
    expect(describeError(new TypeError('boom'))).toBe('internal error: boom');
  });
});

describe('output', () => {
  it('scrubs known secrets even outside URLs', () => {
    addSecret('hunter22');
    expect(scrub('auth failed for hunter22 at redis://a:hunter22@h')).toBe(
      'auth failed for *** at redis://a:***@h',
    );
  });

  it.each([
    [null, 'unknown'],
    [-5, 'expired'],
    [1_234, '1.2s'],
    [45_000, '45s'],
    [185_000, '3m05s'],
    [7_800_000, '2h10m'],
  ])('formatRemaining(%j) = %s', (ms, text) => {
    expect(formatRemaining(ms)).toBe(text);
  });

  it('lines up table columns and shows fences as strings in JSON', () => {
    expect(
      formatTable([
        ['KEY', 'FENCE'],
        ['long-key', '7'],
      ]),
    ).toBe('KEY       FENCE\nlong-key  7');
    expect(
      lockToJson('k', { key: 'k', token: 'abcdefghijkl', fence: 2n ** 70n, remainingMs: 5 }),
    ).toEqual({
      key: 'k',
      held: true,
      tokenPrefix: 'abcdefgh',
      fence: '1180591620717411303424',
      remainingMs: 5,
    });
    expect(lockToJson('k', null)).toEqual({ key: 'k', held: false });
  });
});

describe('grace period', () => {
  it('defaults to min(2s, ttl/4) and refuses more than ttl/4', () => {
    expect(resolveGraceMs(30_000, undefined)).toBe(2_000);
    expect(resolveGraceMs(4_000, undefined)).toBe(1_000);
    expect(resolveGraceMs(30_000, 7_500)).toBe(7_500);
    expect(() => resolveGraceMs(30_000, 7_501)).toThrow(/more than a quarter/);
  });

  it('kills min(200ms, ttl/20) before the deadline', () => {
    expect(killMarginMs(30_000)).toBe(200);
    expect(killMarginMs(1_000)).toBe(50);
  });
});
