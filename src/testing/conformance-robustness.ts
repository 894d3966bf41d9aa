/**
 * The conformance suite's robustness tests: every call settles by its deadline even when the
 * backend never answers; an unreachable store fails fast with its root cause; no secret reaches
 * anything thrown; a holder that is killed loses the lock when its TTL ends.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { LockBackend } from '../core/backend.js';
import { BackendUnavailableError, LockError, LockTimeoutError } from '../core/errors.js';
import { createLocks, type LockManager } from '../core/locks.js';
import { startChild } from './children.js';
import { now, type SuiteContext } from './suite-context.js';

/** A promise that never settles: a store (or a backend) that never answers. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/**
 * A backend with `base`'s name and capabilities whose every call never settles and ignores its
 * signal. With `queued`, it also has a queued `acquire` (that never settles either).
 */
function neverSettling(base: LockBackend, queued: boolean): LockBackend {
  return {
    name: `never-settling-${base.name}`,
    capabilities: { ...base.capabilities, fifo: queued },
    tryAcquire: never,
    ...(queued ? { acquire: never } : {}),
    extend: never,
    release: never,
    inspect: never,
    list: never,
    forceRelease: never,
    watch: never,
    close: never,
  };
}

/** Rejection (or `undefined` on success) and how long the call took. */
async function outcome(call: () => Promise<unknown>): Promise<{ error: unknown; tookMs: number }> {
  const started = now();
  try {
    await call();
    return { error: undefined, tookMs: now() - started };
  } catch (error) {
    return { error, tookMs: now() - started };
  }
}

/**
 * Everything a reader (or a log) could get out of `error`, as text: `util.inspect` at any depth
 * with hidden properties, the message and stack of each error in its cause chain, and their own
 * properties as JSON. A backend's own tests use it to check that no secret is reachable.
 */
export function everythingIn(error: unknown): string {
  const parts = [inspect(error, { depth: Infinity, showHidden: true }), String(error)];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 10; depth += 1) {
    if (e instanceof Error) parts.push(e.message, e.stack ?? '');
    try {
      parts.push(JSON.stringify(e, Object.getOwnPropertyNames(e)));
    } catch {
      // circular or unserialisable: inspect above has it
    }
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}

export function robustnessTests(ctx: SuiteContext): void {
  const { options, ms, ttl, freshKey } = ctx;

  describe('robustness', () => {
    for (const queued of [false, true]) {
      it(`every call settles by its deadline when the backend never answers (${queued ? 'queued' : 'polled'} waits)`, async () => {
        const base = await options.createBackend();
        const operationTimeoutMs = ms(400);
        const locks = createLocks({
          backend: neverSettling(base, queued),
          waitMs: ms(10_000),
          operationTimeoutMs,
        });
        const slack = ms(1_000);
        try {
          const waited = await outcome(() => locks.acquire('k', { waitMs: ms(300) }));
          expect(waited.error).toBeInstanceOf(LockTimeoutError);
          expect(waited.tookMs).toBeGreaterThanOrEqual(ms(300) - 5);
          expect(waited.tookMs).toBeLessThan(ms(300) + slack);

          const reason = new Error('caller gave up');
          const controller = new AbortController();
          setTimeout(() => controller.abort(reason), ms(100));
          const aborted = await outcome(() =>
            locks.acquire('k', { waitMs: Infinity, signal: controller.signal }),
          );
          expect(aborted.error).toBe(reason);
          expect(aborted.tookMs).toBeLessThan(ms(100) + slack);

          const withLock = await outcome(() =>
            locks.withLock('k', () => expect.fail('fn ran without the lock'), {
              waitMs: ms(300),
            }),
          );
          expect(withLock.error).toBeInstanceOf(LockTimeoutError);

          const signalled = new AbortController();
          setTimeout(() => signalled.abort(reason), ms(100));
          const tried = await outcome(() => locks.tryAcquire('k', { signal: signalled.signal }));
          expect(tried.error).toBe(reason);

          for (const call of [
            () => locks.tryAcquire('k'),
            () => locks.acquire('k', { waitMs: 0 }),
            () => locks.release('k', 'token'),
            () => locks.inspect('k'),
            () => locks.list(''),
            () => locks.forceRelease('k'),
            () => locks.close(),
          ]) {
            const result = await outcome(call);
            expect(result.error).toBeInstanceOf(BackendUnavailableError);
            expect(result.tookMs).toBeLessThan(operationTimeoutMs + slack);
          }
        } finally {
          await base.close();
        }
      });
    }

    if (options.createUnreachableBackend) {
      it('an unreachable store fails an acquire at once with BackendUnavailableError and its root cause', async () => {
        const locks = createLocks({
          backend: await options.createUnreachableBackend!(),
          waitMs: ms(5_000),
        });
        try {
          const calls = [
            () => locks.acquire(freshKey('unreachable')),
            () => locks.acquire(freshKey('unreachable'), { waitMs: 0 }),
            () => locks.tryAcquire(freshKey('unreachable')),
          ];
          if (locks.backend.capabilities.shared) {
            calls.push(() => locks.readWrite(freshKey('unreachable')).read());
            calls.push(() => locks.semaphore(freshKey('unreachable'), { limit: 2 }).acquire());
          }
          for (const call of calls) {
            const { error, tookMs } = await outcome(call);
            expect(error, inspect(error)).toBeInstanceOf(BackendUnavailableError);
            expect((error as LockError).retryable).toBe(true);
            expect(everythingIn(error)).toMatch(/ECONNREFUSED/);
            expect(tookMs, 'the call waited for a store that is not there').toBeLessThan(ms(2_000));
          }
        } finally {
          await locks.close().catch(() => undefined);
        }
      });
    }

    if (options.createBackendWithSecret) {
      it('no secret reaches anything thrown, at any depth', async () => {
        const { backend, secret } = await options.createBackendWithSecret!();
        const locks: LockManager = createLocks({ backend, waitMs: ms(1_000) });
        const key = freshKey('secret');
        const errors: unknown[] = [];
        for (const call of [
          () => locks.acquire(key),
          () => locks.acquire(key, { waitMs: 0 }),
          () => locks.tryAcquire(key),
          () => locks.release(key, 'token'),
          () => locks.inspect(key),
          () => locks.list(''),
          () => locks.forceRelease(key),
        ]) {
          const { error } = await outcome(call);
          if (error !== undefined) errors.push(error);
        }
        await outcome(() => locks.close()).then(({ error }) => error && errors.push(error));
        expect(
          errors.length,
          'a backend with a refused secret answered every call',
        ).toBeGreaterThan(0);
        for (const error of errors) {
          expect(error).toBeInstanceOf(LockError);
          expect(everythingIn(error).includes(secret), 'the secret is in a thrown error').toBe(
            false,
          );
        }
      });
    }

    if (options.processBackendModule) {
      it('a killed holder loses the lock when its TTL ends (at once for session-scoped locks), not much later', async () => {
        const locks = await ctx.client();
        const ttlMs = ttl(2_000);
        const key = freshKey('killed');
        const holder = startChild(
          'process-holder',
          options.processBackendModule!,
          { DISTLOCK_CONTENDER_KEY: key, DISTLOCK_HOLDER_TTL_MS: String(ttlMs) },
          'pipe',
        );
        try {
          const heldAt = await new Promise<number>((resolve, reject) => {
            holder.process.stdout!.on('data', (chunk: Buffer) => {
              if (chunk.toString().includes('held')) resolve(now());
            });
            void holder.exited.then(({ code, stderr }) =>
              reject(new Error(`the holder exited (${code}) before holding: ${stderr}`)),
            );
          });
          holder.process.kill('SIGKILL');
          await holder.exited;
          const lease = await locks.acquire(key, { waitMs: ttlMs + ms(10_000) });
          const freedAfter = now() - heldAt;
          if (locks.backend.capabilities.endsWithConnection) {
            // A session-scoped lock ends with the dead holder's connection, before its TTL.
            expect(freedAfter, 'the lock outlived its dead holder').toBeLessThan(ttlMs - ms(500));
          } else {
            expect(freedAfter, 'the store let another holder in before the TTL').toBeGreaterThan(
              ttlMs - ms(500),
            );
          }
          expect(freedAfter, 'the dead holder kept the lock past its TTL').toBeLessThan(
            ttlMs + ms(1_500),
          );
          await lease.release();
        } finally {
          holder.process.kill('SIGKILL');
        }
      }, 60_000);
    }
  });
}
