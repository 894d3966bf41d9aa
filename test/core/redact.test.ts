/** Secrets never survive into a cause: core/redact.ts. */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../src/core/errors.js';
import {
  redactSecrets,
  rootCause,
  safeCause,
  SanitizedError,
  secretsOf,
} from '../../src/core/redact.js';

/** What an ioredis ReplyError for a failed AUTH looks like: the command with its arguments. */
function replyError(password: string): Error {
  const error = new Error('WRONGPASS invalid username-password pair or user is disabled.');
  error.name = 'ReplyError';
  return Object.assign(error, { command: { name: 'auth', args: ['app', password] } });
}

describe('safeCause', () => {
  it('keeps the name, message and locating fields, and drops everything else', () => {
    const copy = safeCause(replyError('Secr3tPw')) as SanitizedError;
    expect(copy).toBeInstanceOf(SanitizedError);
    expect(copy.name).toBe('ReplyError');
    expect(copy.message).toMatch(/^WRONGPASS/);
    expect(inspect(copy, { depth: Infinity, showHidden: true })).not.toContain('Secr3tPw');
    expect((copy as unknown as { command?: unknown }).command).toBeUndefined();
  });

  it('keeps code, errno, syscall, address and port of a connection error', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
      address: '127.0.0.1',
      port: 1,
    });
    expect(safeCause(refused)).toMatchObject({
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
      address: '127.0.0.1',
      port: 1,
    });
  });

  it('copies the cause chain and an AggregateError, redacting URL passwords and given secrets', () => {
    const inner = new AggregateError(
      [new Error('cannot reach redis://app:hunter2@db:6379'), new Error('token s3cr3t-tok')],
      'all attempts failed',
    );
    const outer = new Error('connection failed', { cause: inner });
    const copy = safeCause(outer, ['s3cr3t-tok']);
    const text = inspect(copy, { depth: Infinity, showHidden: true });
    expect(text).toContain('all attempts failed');
    expect(text).toContain('redis://app:***@db:6379');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('s3cr3t-tok');
    expect(rootCause(copy)).toBeInstanceOf(SanitizedError);
  });

  it('survives a cause cycle and non-Error values', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(() => inspect(safeCause(a), { depth: Infinity })).not.toThrow();
    expect(safeCause('plain text').message).toBe('plain text');
    expect(safeCause({ weird: true }).message).toBe('[object Object]');
  });

  it('is what every LockError keeps as its cause', () => {
    const error = new BackendUnavailableError('redis acquire failed', {
      cause: replyError('Secr3tPw'),
    });
    expect(error.cause).toBeInstanceOf(SanitizedError);
    expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain('Secr3tPw');
  });
});

describe('redactSecrets and secretsOf', () => {
  it('find and hide passwords, account keys and SAS signatures', () => {
    expect(redactSecrets('redis://u:p%40ss@h:1 and AccountKey=abc==;x')).toBe(
      'redis://u:***@h:1 and AccountKey=***;x',
    );
    expect(secretsOf('redis://u:p%40ss@h:1')).toEqual(['p%40ss', 'p@ss']);
    expect(secretsOf('https://a.blob.core.windows.net/c?sv=1&sig=AbC%2B')).toEqual([
      'AbC%2B',
      'AbC+',
    ]);
  });
});
