import { describe, expect, it } from 'vitest';
import {
  CliError,
  describeError,
  describeFailure,
  exitCodeFor,
  rootCause,
  UsageError,
} from '../../src/cli/cli-error.js';
import { buildProgram } from '../../src/cli/program.js';
import { separateRunCommand } from '../../src/cli/run-arguments.js';
import { MissingClientLibraryError } from '../../src/backend-url.js';
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
    [new MissingClientLibraryError('redis', 'ioredis'), ExitCode.CONFIG],
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
      mode: 'exclusive',
      tokenPrefix: 'abcdefgh',
      fence: '1180591620717411303424',
      remainingMs: 5,
    });
    expect(lockToJson('k', null)).toEqual({ key: 'k', held: false });
    const reader = { token: 'reader-one', fence: 3n, remainingMs: 7, mode: 'shared' as const };
    expect(
      lockToJson('k', {
        key: 'k',
        ...reader,
        mode: 'shared',
        limit: Infinity,
        holders: [reader],
      }),
    ).toEqual({
      key: 'k',
      held: true,
      mode: 'shared',
      limit: null,
      tokenPrefix: 'reader-o',
      fence: '3',
      remainingMs: 7,
      holders: [{ tokenPrefix: 'reader-o', fence: '3', remainingMs: 7 }],
    });
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

describe('describeFailure', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
    code: 'ECONNREFUSED',
    syscall: 'connect',
  });
  const context = { command: 'run', backend: 'redis://u:***@127.0.0.1:1' };

  it('names the command, the backend and the deepest cause, whatever wraps it', () => {
    const error = new LockTimeoutError('k', 10, {
      cause: new BackendUnavailableError('redis poll failed: Reached the max retries', {
        cause: refused,
      }),
    });
    // (LockErrors keep a sanitized copy of their cause: the same message and code.)
    expect(rootCause(error)).toMatchObject({ message: refused.message, code: 'ECONNREFUSED' });
    expect(describeFailure(error, context)).toBe(
      'run: cannot reach the backend redis://u:***@127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1',
    );
  });

  it("leaves out a client library's internal state and distlock's internal steps", () => {
    const maxRetries = Object.assign(new Error('Reached the max retries per request limit'), {
      name: 'MaxRetriesPerRequestError',
    });
    const error = new BackendUnavailableError('redis inspect failed: Reached the max…', {
      cause: maxRetries,
    });
    expect(rootCause(error)).toBeUndefined();
    expect(describeFailure(error, { ...context, command: 'status' })).toBe(
      'status: cannot reach the backend redis://u:***@127.0.0.1:1',
    );
  });

  it('says the backend failed when it answered, and redacts the cause', () => {
    const error = new BackendError('redis list failed', {
      cause: new Error('WRONGPASS for redis://u:hunter2@h:1'),
    });
    expect(describeFailure(error, { ...context, command: 'list' })).toBe(
      'list: the backend redis://u:***@127.0.0.1:1 failed: WRONGPASS for redis://u:***@h:1',
    );
  });
});

describe('separateRunCommand', () => {
  const program = buildProgram({ exitCode: 0, command: undefined });
  const run = program.commands.find((command) => command.name() === 'run')!;
  const argv = (...args: string[]) => ['node', 'distlock', ...args];

  it.each([
    [
      ['run', 'k', 'ls', '-la'],
      ['run', 'k', '--', 'ls', '-la'],
    ],
    [
      ['run', '--ttl', '5s', 'k', 'ls'],
      ['run', '--ttl', '5s', 'k', '--', 'ls'],
    ],
    [
      ['run', 'k', '--ttl', '5', '-b', 'file:///x', 'ls', '--ttl'],
      ['run', 'k', '--ttl', '5', '-b', 'file:///x', '--', 'ls', '--ttl'],
    ],
    [
      ['run', 'k', '--ttl=5s', '-vbfile:///x', 'ls'],
      ['run', 'k', '--ttl=5s', '-vbfile:///x', '--', 'ls'],
    ],
    [
      ['run', 'k', '-vb', 'file:///x', 'ls'],
      ['run', 'k', '-vb', 'file:///x', '--', 'ls'],
    ],
    [
      ['run', 'k', '-c', 'echo hi'],
      ['run', 'k', '-c', 'echo hi'],
    ],
    [
      ['run', 'k', '--', 'ls', '-la'],
      ['run', 'k', '--', 'ls', '-la'],
    ],
    [
      ['run', 'k'],
      ['run', 'k'],
    ],
    [
      ['status', 'k', '--json'],
      ['status', 'k', '--json'],
    ],
  ])('%j → %j', (args, expected) => {
    expect(separateRunCommand(argv(...args), run)).toEqual(argv(...expected));
  });
});
