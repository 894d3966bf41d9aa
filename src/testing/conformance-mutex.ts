/**
 * The conformance suite's mutex tests: exclusion (among async clients and OS processes), expiry
 * and loss, tokens, fences, waiting, bad input, operator calls and FIFO order.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LockBackend } from '../core/backend.js';
import {
  InvalidArgumentError,
  LockClosedError,
  LockLostError,
  LockTimeoutError,
} from '../core/errors.js';
import type { Lease } from '../core/lease.js';
import { createLocks, type LockManager, type LockManagerOptions } from '../core/locks.js';
import { runContenders } from './children.js';
import { abortedAt, delay, now, queued, type SuiteContext } from './suite-context.js';

export function mutexTests(ctx: SuiteContext): void {
  const { options, ms, ttl, client, freshKey } = ctx;
  describe('mutual exclusion', () => {
    it('admits one holder at a time among many concurrent async clients, with fences in order', async () => {
      const key = freshKey('mutex');
      const clients = await Promise.all(Array.from({ length: 6 }, () => client()));
      let inside = 0;
      let maxInside = 0;
      let lastFence = 0n;
      let sections = 0;
      await Promise.all(
        clients.map(async (locks) => {
          for (let i = 0; i < 8; i += 1) {
            await locks.withLock(
              key,
              async (lease) => {
                inside += 1;
                maxInside = Math.max(maxInside, inside);
                expect(lease.fence).toBeGreaterThan(lastFence);
                lastFence = lease.fence;
                await delay(1);
                sections += 1;
                inside -= 1;
              },
              { waitMs: ms(30_000) },
            );
          }
        }),
      );
      expect(maxInside).toBe(1);
      expect(sections).toBe(48);
    });

    it('tryAcquire on a held key returns null without waiting; on a free key returns a lease', async () => {
      const key = freshKey('try');
      const [a, b] = [await client(), await client()];
      const lease = await a.acquire(key);
      const started = now();
      expect(await b.tryAcquire(key)).toBeNull();
      expect(now() - started).toBeLessThan(ms(1_000));
      await lease.release();
      const second = await b.tryAcquire(key);
      expect(second).not.toBeNull();
      expect(second!.fence).toBeGreaterThan(lease.fence);
      await second!.release();
    });

    it('a second acquire with another token and waitMs 0 fails fast with LockTimeoutError', async () => {
      const key = freshKey('nowait');
      const [a, b] = [await client(), await client()];
      const lease = await a.acquire(key, { token: 'token-a' });
      expect(lease.token).toBe('token-a');
      const started = now();
      await expect(b.acquire(key, { waitMs: 0, token: 'token-b' })).rejects.toBeInstanceOf(
        LockTimeoutError,
      );
      expect(now() - started).toBeLessThan(ms(1_000));
      await lease.release();
    });

    it('distinct keys do not contend, including keys with unusual characters', async () => {
      const locks = await client();
      const base = freshKey('chars');
      const keys = [
        `${base}/a`,
        `${base}_a`,
        `${base}/../a`,
        `${base} ünï ☃`,
        `${base}:a*?[]`,
        `${base}${'x'.repeat(900)}`,
      ];
      const leases = await Promise.all(keys.map((key) => locks.acquire(key, { waitMs: 0 })));
      expect(new Set(leases.map((l) => l.key)).size).toBe(keys.length);
      for (const key of keys)
        expect((await locks.inspect(key))?.token).toBe(leases[keys.indexOf(key)]!.token);
      await Promise.all(leases.map((l) => l.release()));
    });
  });

  if (options.processBackendModule) {
    const processes = options.processes ?? 4;
    it(`admits one holder at a time among ${processes} OS processes`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'distlock-conformance-'));
      try {
        const counter = join(dir, 'counter');
        writeFileSync(counter, '0');
        const iterations = 15;
        const { results, intervals: logged } = await runContenders(
          options.processBackendModule!,
          processes,
          {
            key: freshKey('processes'),
            iterations,
            out: join(dir, 'intervals.jsonl'),
            env: { DISTLOCK_CONTENDER_COUNTER: counter },
          },
        );
        for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
        const intervals = logged.sort((x, y) => x.start - y.start);
        expect(intervals).toHaveLength(processes * iterations);
        expect(new Set(intervals.map((i) => i.pid)).size).toBe(processes);
        for (let i = 1; i < intervals.length; i += 1) {
          const [previous, current] = [intervals[i - 1]!, intervals[i]!];
          expect(current.start, 'critical sections overlap').toBeGreaterThanOrEqual(previous.end);
          expect(BigInt(current.fence), 'fences follow the order of holders').toBeGreaterThan(
            BigInt(previous.fence),
          );
        }
        expect(Number(readFileSync(counter, 'utf8'))).toBe(processes * iterations);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  }

  describe('expiry and loss', () => {
    it('an abandoned lease expires; its signal fires before another client gets the lock', async () => {
      const key = freshKey('expiry');
      const [a, b] = [await client(), await client()];
      const abandoned = await a.acquire(key, { ttlMs: ttl(400) });
      const lostAt = abortedAt(abandoned.signal);
      const next = await b.acquire(key, { waitMs: ttl(400) + ms(10_000) });
      const acquiredAt = now();
      expect(await lostAt).toBeLessThanOrEqual(acquiredAt);
      expect(abandoned.signal.reason).toBeInstanceOf(LockLostError);
      expect((abandoned.signal.reason as LockLostError).reason).toBe('expired');
      expect(next.fence).toBeGreaterThan(abandoned.fence);
      expect(await abandoned.release()).not.toBe('released');
      await next.release();
    });

    it('expiresAt is no later than the TTL measured from before the request', async () => {
      const locks = await client();
      const before = Date.now();
      // 20 s: its drift allowance (1 %, 200 ms) also covers the client's own work between `before`
      // and the request leaving, which a loaded host can stretch past 50 ms.
      const ttlMs = ttl(20_000);
      const lease = await locks.acquire(freshKey('deadline'), { ttlMs });
      expect(lease.expiresAt).toBeLessThan(before + ttlMs);
      expect(lease.expiresAt).toBeGreaterThan(before + ttlMs - ms(1_000));
      await lease.release();
    });

    it('withLock renews the lease while fn runs past the TTL', async () => {
      const key = freshKey('renew');
      const [a, b] = [await client(), await client()];
      const ttlMs = ttl(600);
      const result = await a.withLock(
        key,
        async (lease) => {
          // Three TTLs, or (long store leases) one TTL and 5 s: either way, renewals were needed.
          const until = now() + Math.min(ttlMs * 3, ttlMs + ms(5_000));
          while (now() < until) {
            expect(await b.tryAcquire(key)).toBeNull();
            await delay(ms(100));
          }
          return { lost: lease.lost, fence: lease.fence };
        },
        { ttlMs },
      );
      expect(result.lost).toBe(false);
      const after = await b.acquire(key, { waitMs: ms(2_000) });
      expect(after.fence).toBeGreaterThan(result.fence);
      await after.release();
    });

    it('a lease whose lock is taken by another client is signalled lost on its next extend', async () => {
      const key = freshKey('stolen');
      const [a, b] = [await client(), await client()];
      const victim = await a.acquire(key, { ttlMs: ttl(400) });
      const thief = await b.acquire(key, { ttlMs: ttl(10_000), waitMs: ttl(400) + ms(10_000) });
      await expect(victim.extend(ttl(5_000))).rejects.toBeInstanceOf(LockLostError);
      expect(victim.lost).toBe(true);
      expect((await b.inspect(key))?.token).toBe(thief.token);
      await thief.release();
    });

    it('withLock aborts the lease signal when the lock is force-released and taken over', async () => {
      const key = freshKey('force');
      const [a, b] = [await client(), await client()];
      const ttlMs = ttl(900);
      let thief: Lease | undefined;
      const outcome = a.withLock(
        key,
        async (lease) => {
          if (!(await b.forceRelease(key).catch(() => false))) {
            // Backends without forceRelease: let the holder's renewal be refused by a new holder after expiry.
            return 'no-force-release';
          }
          thief = await b.acquire(key, { waitMs: ms(5_000) });
          await abortedAt(lease.signal);
          return (lease.signal.reason as LockLostError).reason;
        },
        { ttlMs, renewEveryMs: ms(100) },
      );
      const reason = await outcome;
      if (reason !== 'no-force-release') {
        expect(reason).toBe('not-owner');
        expect((await b.inspect(key))?.token).toBe(thief!.token);
        await thief!.release();
      }
    });
  });

  describe('tokens', () => {
    it('release and extend are refused for a wrong token; the holder keeps the lock', async () => {
      const key = freshKey('token');
      const [a, b] = [await client(), await client()];
      const lease = await a.acquire(key);
      expect(await b.release(key, 'not-the-token')).toBe('not-owner');
      expect(await b.backend.extend({ key, token: 'not-the-token' }, ttl(5_000))).toEqual({
        extended: false,
        reason: 'not-owner',
      });
      expect((await b.inspect(key))?.token).toBe(lease.token);
      expect(await b.release(key, lease.token)).toBe('released');
      expect(await b.inspect(key)).toBeNull();
    });

    it('releasing twice, or after expiry, is answered with a typed outcome', async () => {
      const locks = await client();
      const lease = await locks.acquire(freshKey('twice'));
      expect(await lease.release()).toBe('released');
      expect(await lease.release()).toBe('expired');
      const shortTtl = ttl(150);
      const short = await locks.acquire(freshKey('late'), { ttlMs: shortTtl });
      await abortedAt(short.signal);
      // Past the store's TTL, not just the local (earlier) one.
      await delay(ms(150) + Math.floor(shortTtl / 10));
      expect(await short.release()).toBe('expired');
    });

    it('extend pushes the deadline out; extending a released lease throws LockLostError', async () => {
      const locks = await client();
      const lease = await locks.acquire(freshKey('extend'), { ttlMs: ttl(1_000) });
      const first = lease.expiresAt;
      await delay(5);
      await lease.extend(ttl(5_000));
      expect(lease.expiresAt).toBeGreaterThan(first);
      await lease.release();
      await expect(lease.extend()).rejects.toBeInstanceOf(LockLostError);
    });

    it('uses the pluggable token generator and stateless release by token', async () => {
      const key = freshKey('tokens');
      let n = 0;
      const locks = await client({ tokens: (k) => `custom-${k.length}-${(n += 1)}` });
      const lease = await locks.acquire(key);
      expect(lease.token).toBe(`custom-${key.length}-1`);
      const other = await client();
      expect(await other.release(key, lease.token)).toBe('released');
    });

    it('await using releases the lease at the end of the block', async () => {
      const key = freshKey('using');
      const locks = await client();
      {
        await using lease = await locks.acquire(key);
        expect((await locks.inspect(key))?.token).toBe(lease.token);
      }
      expect(await locks.inspect(key)).toBeNull();
    });
  });

  describe('fencing', () => {
    it('fences strictly increase across holders, releases and expiries', async () => {
      const key = freshKey('fence');
      const clients = [await client(), await client(), await client()];
      const fences: bigint[] = [];
      for (let i = 0; i < 9; i += 1) {
        const lease = await clients[i % 3]!.acquire(key, {
          ttlMs: ttl(i % 3 === 2 ? 150 : 5_000),
          waitMs: ttl(150) + ms(5_000),
        });
        fences.push(lease.fence);
        if (i % 3 !== 2) await lease.release(); // every third one is abandoned and expires
      }
      for (let i = 1; i < fences.length; i += 1) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
    });

    it('inspect reports the holder, its fence and the time left', async () => {
      const key = freshKey('inspect');
      const locks = await client();
      expect(await locks.inspect(key)).toBeNull();
      const lease = await locks.acquire(key, { ttlMs: ttl(5_000) });
      const info = await locks.inspect(key);
      expect(info).toMatchObject({ key, token: lease.token, fence: lease.fence });
      if (info!.remainingMs !== null) {
        expect(info!.remainingMs).toBeGreaterThan(0);
        expect(info!.remainingMs).toBeLessThanOrEqual(ttl(5_000));
      }
      await lease.release();
    });
  });

  describe('waiting', () => {
    it('waitMs is honoured within a small bound, and nothing is left held', async () => {
      const key = freshKey('deadline');
      const [a, b] = [await client(), await client()];
      const lease = await a.acquire(key);
      const started = now();
      const error = await b.acquire(key, { waitMs: ms(300) }).catch((e: unknown) => e);
      const waited = now() - started;
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(waited).toBeGreaterThanOrEqual(ms(300) - 5);
      expect(waited).toBeLessThan(ms(300) + ms(1_000));
      await lease.release();
      const after = await b.tryAcquire(key);
      expect(after, 'the timed-out waiter must not hold or block the key').not.toBeNull();
      await after!.release();
    });

    it('an AbortSignal cancels the wait promptly with its reason, and nothing is left held', async () => {
      const key = freshKey('abort');
      const [a, b] = [await client(), await client()];
      const lease = await a.acquire(key);
      const controller = new AbortController();
      const reason = new Error('caller gave up');
      setTimeout(() => controller.abort(reason), ms(100));
      const started = now();
      await expect(b.acquire(key, { waitMs: ms(10_000), signal: controller.signal })).rejects.toBe(
        reason,
      );
      expect(now() - started).toBeLessThan(ms(100) + ms(1_000));
      await lease.release();
      const after = await b.tryAcquire(key);
      expect(after).not.toBeNull();
      await after!.release();
      const aborted = AbortSignal.abort(reason);
      await expect(b.acquire(key, { signal: aborted })).rejects.toBe(reason);
      expect(await b.inspect(key)).toBeNull();
    });

    it('a waiter gets the lock promptly after the holder releases', async () => {
      const key = freshKey('handoff');
      const [a, b] = [await client(), await client()];
      const lease = await a.acquire(key);
      const waiting = b.acquire(key, { waitMs: ms(10_000) });
      await delay(ms(200)); // let the waiter settle into its wait
      const releasedAt = now();
      await lease.release();
      const next = await waiting;
      expect(now() - releasedAt).toBeLessThan(ms(1_000));
      expect(next.fence).toBeGreaterThan(lease.fence);
      await next.release();
    });

    it('emits acquired, waited, extended, released and lost events', async () => {
      const key = freshKey('events');
      const events: string[] = [];
      const a = await client({
        onEvent: (e) => events.push(`${e.type}:${'outcome' in e ? e.outcome : ''}`),
      });
      const b = await client();
      const held = await b.acquire(key);
      const waiting = a.acquire(key, { waitMs: ms(10_000) });
      await delay(ms(100));
      await held.release();
      const lease = await waiting;
      await lease.extend(ttl(300));
      await abortedAt(lease.signal);
      await lease.release();
      expect(events).toEqual([
        'waited:acquired',
        'acquired:',
        'extended:',
        'lost:',
        expect.stringMatching(/^released:/),
      ]);
    });

    {
      it('close() rejects pending waits with LockClosedError', async () => {
        const key = freshKey('close');
        const holder = await client();
        const lease = await holder.acquire(key);
        const waiter = createLocks({
          backend: await options.createBackend(),
          waitMs: ms(10_000),
        });
        const pending = waiter.acquire(key);
        await delay(ms(50));
        // Observe the rejection before closing: a backend's close may do I/O while it lands.
        const rejected = expect(pending).rejects.toBeInstanceOf(LockClosedError);
        await waiter.close();
        await rejected;
        await expect(waiter.acquire(key)).rejects.toBeInstanceOf(LockClosedError);
        await lease.release();
      });
    }
  });

  describe('bad input', () => {
    const cases: Array<[string, (locks: LockManager) => Promise<unknown>, string]> = [
      ['empty key', (l) => l.acquire(''), 'key'],
      ['non-string key', (l) => l.acquire(42 as unknown as string), 'key'],
      ['over-long key', (l) => l.acquire('k'.repeat(1025)), 'key'],
      ['ill-formed key (a lone surrogate)', (l) => l.acquire('a\uD800b'), 'key'],
      ['ill-formed key in tryAcquire', (l) => l.tryAcquire('a\uDC00'), 'key'],
      ['ttlMs 0', (l) => l.acquire('k', { ttlMs: 0 }), 'ttlMs'],
      ['negative ttlMs', (l) => l.tryAcquire('k', { ttlMs: -5 }), 'ttlMs'],
      ['fractional ttlMs', (l) => l.acquire('k', { ttlMs: 1.5 }), 'ttlMs'],
      ['NaN ttlMs', (l) => l.acquire('k', { ttlMs: Number.NaN }), 'ttlMs'],
      ['negative waitMs', (l) => l.acquire('k', { waitMs: -1 }), 'waitMs'],
      ['empty token', (l) => l.acquire('k', { token: '' }), 'token'],
      ['bad signal', (l) => l.acquire('k', { signal: {} as AbortSignal }), 'signal'],
      ['release without token', (l) => l.release('k', ''), 'token'],
      ['withLock without fn', (l) => l.withLock('k', undefined as never), 'fn'],
      [
        'renewEveryMs >= ttlMs',
        (l) => l.withLock('k', async () => 1, { ttlMs: ttl(100), renewEveryMs: ttl(100) }),
        'renewEveryMs',
      ],
      [
        'extend with ttlMs 0',
        async (l) => (await l.acquire(freshKey('bad-extend'))).extend(0),
        'ttlMs',
      ],
    ];
    for (const [label, call, option] of cases) {
      it(`rejects ${label} with InvalidArgumentError naming "${option}"`, async () => {
        const locks = await client();
        const error = await call(locks).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect((error as InvalidArgumentError).option).toBe(option);
      });
    }

    it("rejects a ttlMs outside the backend's minTtlMs/maxTtlMs naming ttlMs (where it has bounds)", async () => {
      const locks = await client();
      const { minTtlMs, maxTtlMs } = locks.backend.capabilities;
      const outside = [
        ...(minTtlMs !== undefined && minTtlMs > 1 ? [minTtlMs - 1] : []),
        ...(maxTtlMs !== undefined ? [maxTtlMs + 1] : []),
      ];
      for (const ttlMs of outside) {
        for (const call of [
          () => locks.acquire(freshKey('bounds'), { ttlMs }),
          () => locks.tryAcquire(freshKey('bounds'), { ttlMs }),
          () => locks.withLock(freshKey('bounds'), () => 1, { ttlMs }),
          async () => {
            const lease = await locks.acquire(freshKey('bounds'));
            try {
              await lease.extend(ttlMs);
            } finally {
              await lease.release();
            }
          },
          async () => createLocks({ backend: locks.backend, ttlMs }),
        ]) {
          const error = await call().catch((e: unknown) => e);
          expect(error, `ttlMs ${ttlMs}`).toBeInstanceOf(InvalidArgumentError);
          expect((error as InvalidArgumentError).option).toBe('ttlMs');
        }
      }
      // At the lower bound (or, without one, a usual TTL), the TTL is served.
      const lease = await locks.acquire(freshKey('bounds'), { ttlMs: minTtlMs ?? ttl(5_000) });
      expect(lease.lost).toBe(false);
      await lease.release();
    });

    it('rejects bad manager options naming the option', async () => {
      const backend = await options.createBackend();
      const bad: Array<[Partial<LockManagerOptions>, string]> = [
        [{ backend: undefined }, 'backend'],
        [{ backend: {} as LockBackend }, 'backend'],
        [{ backend, ttlMs: 0 }, 'ttlMs'],
        [{ backend, waitMs: -1 }, 'waitMs'],
        [{ backend, retry: { tries: 0 } }, 'retry.tries'],
        [{ backend, retry: { jitter: 2 } }, 'retry.jitter'],
        [{ backend, driftFactor: 1 }, 'driftFactor'],
        [{ backend, tokens: 'x' as never }, 'tokens'],
      ];
      for (const [opts, option] of bad) {
        let error: unknown;
        try {
          createLocks(opts as LockManagerOptions);
        } catch (e) {
          error = e;
        }
        expect(error, option).toBeInstanceOf(InvalidArgumentError);
        expect((error as InvalidArgumentError).option).toBe(option);
      }
      await backend.close();
    });
  });

  describe('operator calls', () => {
    it('list shows current holders under a prefix (where the backend can list)', async () => {
      const locks = await client();
      const base = freshKey('list');
      const leases = await Promise.all([`${base}/x`, `${base}/y`].map((k) => locks.acquire(k)));
      if (!locks.backend.list) return;
      const infos = await locks.list(`${base}/`);
      expect(infos.map((i) => i.key).sort()).toEqual([`${base}/x`, `${base}/y`]);
      expect(infos.find((i) => i.key === `${base}/x`)?.token).toBe(leases[0]!.token);
      await Promise.all(leases.map((l) => l.release()));
      expect(await locks.list(`${base}/`)).toEqual([]);
    });
  });

  {
    describe('fairness', () => {
      it('serves queued waiters in arrival order (FIFO backends)', async () => {
        const locks = await client();
        if (!locks.backend.capabilities.fifo) return;
        const key = freshKey('fifo');
        const holder = await locks.acquire(key);
        const order: number[] = [];
        const waiters: Promise<void>[] = [];
        for (let i = 0; i < 5; i += 1) {
          const waiter = await client();
          waiters.push(
            waiter.acquire(key, { waitMs: ms(10_000) }).then(async (lease) => {
              order.push(i);
              await lease.release();
            }),
          );
          await queued(locks, key, i + 1); // make arrival order unambiguous
        }
        await holder.release();
        await Promise.all(waiters);
        expect(order).toEqual([0, 1, 2, 3, 4]);
      });
    });
  }
}
