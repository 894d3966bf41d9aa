/**
 * The files backend: the shared conformance suite (including OS processes contending through the
 * fixture module), then direct tests of what is particular to it: the atomic takeover race,
 * fences across restarts, any key and token, operator calls, wake-ups, options and error mapping.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { LockBackend } from '../../src/core/backend.js';
import { InvalidArgumentError, LockClosedError } from '../../src/core/errors.js';
import {
  filesBackend,
  LockDirectoryError,
  type FilesBackend,
  type FilesBackendOptions,
} from '../../src/backends/files/index.js';
import { runConformanceSuite } from '../../src/testing/conformance.js';
import { FILES_DIR_ENV } from '../fixtures/files-backend.js';
import { tempDir, waitUntil } from '../harness/process.js';

const dirs: Array<{ remove: () => void }> = [];
const backends: FilesBackend[] = [];

afterAll(async () => {
  await Promise.all(backends.map((backend) => backend.close()));
  for (const dir of dirs) dir.remove();
});

/** A fresh lock directory and `count` backends over it (simulated clients). */
function setup(
  count = 1,
  options: FilesBackendOptions = {},
): { dir: string; clients: FilesBackend[] } {
  const dir = tempDir('distlock-files-');
  dirs.push(dir);
  const clients = Array.from({ length: count }, () => {
    const backend = filesBackend({ dir: dir.path, ...options });
    backends.push(backend);
    return backend;
  });
  return { dir: dir.path, clients };
}

const conformanceDir = tempDir('distlock-files-conformance-');
dirs.push(conformanceDir);
// Read by the fixture module in the processes the suite spawns (they inherit the environment).
process.env[FILES_DIR_ENV] = conformanceDir.path;

runConformanceSuite({
  name: 'files',
  createBackend: () => filesBackend({ dir: conformanceDir.path }),
  processBackendModule: fileURLToPath(new URL('../fixtures/files-backend.ts', import.meta.url)),
});

const acquire = (backend: LockBackend, key: string, token: string, ttlMs = 10_000) =>
  backend.tryAcquire({ key, token, ttlMs });

async function waitExpired(backend: LockBackend, key: string): Promise<void> {
  await waitUntil(`${key} to expire`, async () => (await backend.inspect(key)) === null, 5_000, 2);
}

describe('files backend', () => {
  it('reports its capabilities', () => {
    const [backend] = setup().clients;
    expect(backend!.name).toBe('files');
    expect(backend!.capabilities).toEqual({
      fencing: true,
      notify: true,
      fifo: false,
      crossProcess: true,
      shared: true,
    });
  });

  it('takes a free key, refuses a held one, and frees it on release', async () => {
    const [a, b] = setup(2).clients as [FilesBackend, FilesBackend];
    const first = await acquire(a, 'k', 'token-a');
    expect(first).toEqual({ acquired: true, fence: 1n });
    const second = await acquire(b, 'k', 'token-b');
    expect(second.acquired).toBe(false);
    if (!second.acquired) expect(second.retryAfterMs).toBeGreaterThan(9_000);
    expect(await acquire(a, 'k', 'token-a')).toMatchObject({ acquired: false });
    expect(await a.release({ key: 'k', token: 'token-a' })).toBe('released');
    expect(await acquire(b, 'k', 'token-b')).toEqual({ acquired: true, fence: 2n });
  });

  it('lets exactly one of many concurrent contenders take over an expired lock, every time', async () => {
    const { clients } = setup(6);
    const [first] = clients as [FilesBackend];
    const rounds = 40;
    const lastFences = new Map<string, bigint>();
    for (let round = 0; round < rounds; round += 1) {
      const key = `expired-${round % 4}`;
      const held = await acquire(first, key, `short-${round}`, 1);
      expect(held.acquired).toBe(true);
      await waitExpired(first, key);
      // 6 backends x 5 calls each, all reading the same expired head before anyone writes.
      const attempts = clients.flatMap((client, c) =>
        Array.from({ length: 5 }, (_, i) => acquire(client, key, `round-${round}-${c}-${i}`)),
      );
      const results = await Promise.all(attempts);
      const winners = results.filter((result) => result.acquired);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      if (winner.acquired) {
        expect(winner.fence).toBeGreaterThan(lastFences.get(key) ?? 0n);
        lastFences.set(key, winner.fence);
      }
      const info = await first.inspect(key);
      expect(info?.token).toMatch(new RegExp(`^round-${round}-`));
      expect(await first.forceRelease(key)).toBe(true);
    }
  });

  it('keeps many concurrent async acquirers mutually exclusive, with increasing fences', async () => {
    const { clients } = setup(4);
    const key = 'shared';
    const workersPerClient = 5;
    const holdingsPerWorker = 8;
    let inside = 0;
    let maxInside = 0;
    const fences: bigint[] = [];
    const worker = async (client: LockBackend, id: string) => {
      for (let n = 0; n < holdingsPerWorker; n += 1) {
        const token = `${id}-${n}`;
        let result = await acquire(client, key, token);
        while (!result.acquired) {
          await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 3));
          result = await acquire(client, key, token);
        }
        inside += 1;
        maxInside = Math.max(maxInside, inside);
        fences.push(result.fence);
        await new Promise((resolve) => setImmediate(resolve));
        inside -= 1;
        expect(await client.release({ key, token })).toBe('released');
      }
    };
    await Promise.all(
      clients.flatMap((client, c) =>
        Array.from({ length: workersPerClient }, (_, w) => worker(client, `c${c}w${w}`)),
      ),
    );
    expect(maxInside).toBe(1);
    expect(fences).toHaveLength(clients.length * workersPerClient * holdingsPerWorker);
    for (let i = 1; i < fences.length; i += 1) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!);
  });

  it('issues ever-larger fences across releases, expiries and a restart on the same directory', async () => {
    const { dir, clients } = setup(1);
    const a = clients[0]!;
    const seen: bigint[] = [];
    const take = async (backend: LockBackend, token: string, ttlMs = 10_000) => {
      const result = await acquire(backend, 'fenced', token, ttlMs);
      if (!result.acquired) throw new Error('expected to acquire');
      seen.push(result.fence);
    };
    await take(a, 't1');
    expect(await a.extend({ key: 'fenced', token: 't1' }, 10_000)).toEqual({ extended: true });
    expect((await a.inspect('fenced'))?.fence).toBe(seen[0]); // extending keeps the fence
    await a.release({ key: 'fenced', token: 't1' });
    await take(a, 't2', 1);
    await waitExpired(a, 'fenced');
    await take(a, 't3');
    await a.close();
    const restarted = filesBackend({ dir });
    backends.push(restarted);
    expect((await restarted.inspect('fenced'))?.token).toBe('t3');
    await restarted.forceRelease('fenced');
    await take(restarted, 't4');
    for (let i = 1; i < seen.length; i += 1) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
  });

  it('checks tokens on extend and release and answers with typed outcomes', async () => {
    const [a, b] = setup(2).clients as [FilesBackend, FilesBackend];
    const lease = { key: 'tok', token: 'owner' };
    await acquire(a, 'tok', 'owner', 1_000);
    expect(await b.extend({ key: 'tok', token: 'thief' }, 5_000)).toEqual({
      extended: false,
      reason: 'not-owner',
    });
    expect(await b.release({ key: 'tok', token: 'thief' })).toBe('not-owner');
    expect(await a.extend(lease, 60_000)).toEqual({ extended: true });
    expect((await b.inspect('tok'))?.remainingMs).toBeGreaterThan(50_000);
    expect(await a.release(lease)).toBe('released');
    expect(await a.release(lease)).toBe('expired');
    expect(await a.extend(lease, 5_000)).toEqual({ extended: false, reason: 'expired' });
    await acquire(a, 'tok', 'owner', 1);
    await waitExpired(a, 'tok');
    expect(await a.extend(lease, 5_000)).toEqual({ extended: false, reason: 'expired' });
    expect(await a.release(lease)).toBe('expired');
    await acquire(b, 'tok', 'next');
    expect(await a.release(lease)).toBe('not-owner');
  });

  it('handles any key and any token: slashes, unicode, empty-looking, very long', async () => {
    const [a] = setup(1).clients as [FilesBackend];
    const keys = ['a/b/../c', 'ünï/💥', ' ', '.', 'k'.repeat(5_000), 'CASE', 'case'];
    const longToken = 'τ'.repeat(400);
    for (const [i, key] of keys.entries()) {
      const token = i === 0 ? longToken : `token-${i}`;
      expect(await acquire(a, key, token)).toMatchObject({ acquired: true });
      expect(await a.inspect(key)).toMatchObject({ key, token, fence: 1n });
    }
    expect(await a.extend({ key: keys[0]!, token: longToken }, 20_000)).toEqual({ extended: true });
    expect((await a.inspect(keys[0]!))?.token).toBe(longToken);
    expect(await a.release({ key: keys[0]!, token: 'τ'.repeat(399) })).toBe('not-owner');
    expect(await a.release({ key: keys[0]!, token: longToken })).toBe('released');
  });

  it('lists live holders by prefix and force-releases them', async () => {
    const [a, b] = setup(2).clients as [FilesBackend, FilesBackend];
    expect(await a.list('')).toEqual([]);
    await acquire(a, 'jobs/2', 'j2');
    await acquire(a, 'jobs/1', 'j1');
    await acquire(b, 'other', 'o');
    await acquire(b, 'jobs/expired', 'x', 1);
    await acquire(b, 'jobs/released', 'r');
    await b.release({ key: 'jobs/released', token: 'r' });
    await waitExpired(a, 'jobs/expired');
    const listed = await b.list('jobs/');
    expect(listed.map(({ key, token, fence }) => ({ key, token, fence }))).toEqual([
      { key: 'jobs/1', token: 'j1', fence: 1n },
      { key: 'jobs/2', token: 'j2', fence: 1n },
    ]);
    expect(listed.every((info) => info.remainingMs !== null && info.remainingMs > 0)).toBe(true);
    expect((await a.list('')).map((info) => info.key)).toEqual(['jobs/1', 'jobs/2', 'other']);
    expect(await b.forceRelease('jobs/1')).toBe(true);
    expect(await b.forceRelease('jobs/1')).toBe(false);
    expect(await b.forceRelease('never-locked')).toBe(false);
    expect(await a.release({ key: 'jobs/1', token: 'j1' })).toBe('expired');
    const next = await acquire(b, 'jobs/1', 'new');
    expect(next.acquired && next.fence > 1n).toBe(true);
  });

  for (const watch of [true, false]) {
    it(`watch wakes a waiter on release and on expiry (${watch ? 'fs.watch' : 'polling only'})`, async () => {
      const [a, b] = setup(2, { watch, pollIntervalMs: 50 }).clients as [
        FilesBackend,
        FilesBackend,
      ];
      let changes = 0;
      const changedAt: number[] = [];
      const unwatch = await b.watch('watched', () => {
        changes += 1;
        changedAt.push(Date.now());
      });
      await acquire(a, 'watched', 'holder');
      await waitUntil('a change after acquire', () => changes > 0, 5_000, 5);
      const before = changes;
      await a.release({ key: 'watched', token: 'holder' });
      await waitUntil('a change after release', () => changes > before, 5_000, 5);
      const shortFrom = Date.now();
      await acquire(a, 'watched', 'short', 150);
      // No filesystem event announces an expiry: the expiry timer does. (On a loaded machine a
      // poll may see the short lease only once it has ended: one change then covers both.) Timers
      // run on the monotonic clock and may fire a millisecond or so before Date.now() says: 20 ms
      // of slack, still far past the acquire's own change.
      await waitUntil(
        'a change at or after expiry',
        () => changedAt.some((at) => at >= shortFrom + 130),
        5_000,
        5,
      );
      expect(await b.inspect('watched')).toBeNull();
      await unwatch();
      const afterUnwatch = changes;
      await acquire(a, 'watched', 'after');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(changes).toBe(afterUnwatch);
    });
  }

  it('leaves no handle that keeps a process alive (watchers, polls, timers)', async () => {
    const { dir } = setup(0);
    const script = `
      import { filesBackend } from ${JSON.stringify(join(process.cwd(), 'src/backends/files/index.ts'))};
      const backend = filesBackend({ dir: ${JSON.stringify(dir)}, pollIntervalMs: 10 });
      await backend.tryAcquire({ key: 'alive', token: 't', ttlMs: 60_000 });
      await backend.watch('alive', () => {});
      await backend.watch('other', () => {});
      console.log('ready');
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 20_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(output).toContain('ready');
    expect(code).toBe(0);
  });

  it('rejects with the abort reason and changes nothing when the signal is aborted', async () => {
    const [a] = setup(1).clients as [FilesBackend];
    const reason = new Error('stop');
    const signal = AbortSignal.abort(reason);
    await expect(a.tryAcquire({ key: 'abort', token: 't', ttlMs: 1_000 }, { signal })).rejects.toBe(
      reason,
    );
    await expect(a.inspect('abort', { signal })).rejects.toBe(reason);
    await expect(a.list('', { signal })).rejects.toBe(reason);
    await expect(a.watch('abort', () => {}, { signal })).rejects.toBe(reason);
    expect(await a.inspect('abort')).toBeNull();
    await acquire(a, 'abort', 't');
    await expect(a.release({ key: 'abort', token: 't' }, { signal })).rejects.toBe(reason);
    await expect(a.extend({ key: 'abort', token: 't' }, 1, { signal })).rejects.toBe(reason);
    await expect(a.forceRelease('abort', { signal })).rejects.toBe(reason);
    expect((await a.inspect('abort'))?.token).toBe('t');
  });

  it('throws LockClosedError after close', async () => {
    const [a] = setup(1).clients as [FilesBackend];
    await a.close();
    await expect(acquire(a, 'closed', 't')).rejects.toBeInstanceOf(LockClosedError);
    await expect(a.inspect('closed')).rejects.toBeInstanceOf(LockClosedError);
  });

  it('validates options eagerly, naming the bad option', () => {
    const bad: Array<[FilesBackendOptions, string]> = [
      [{ dir: '' }, 'dir'],
      [{ dir: 42 as unknown as string }, 'dir'],
      [{ pollIntervalMs: 0 }, 'pollIntervalMs'],
      [{ pollIntervalMs: 1.5 }, 'pollIntervalMs'],
      [{ pollIntervalMs: Number.NaN }, 'pollIntervalMs'],
      [{ watch: 'yes' as unknown as boolean }, 'watch'],
      [{ fsync: 1 as unknown as boolean }, 'fsync'],
      [{ shareWithGroup: 'yes' as unknown as boolean }, 'shareWithGroup'],
      [{ dir: 'a\0b' }, 'dir'],
    ];
    for (const [options, option] of bad) {
      expect(() => filesBackend(options)).toThrow(InvalidArgumentError);
      try {
        filesBackend(options);
      } catch (error) {
        expect((error as InvalidArgumentError).option).toBe(option);
      }
    }
  });

  it('validates call arguments', async () => {
    const [a] = setup(1).clients as [FilesBackend];
    await expect(a.tryAcquire({ key: 'k', token: '', ttlMs: 1 })).rejects.toMatchObject({
      option: 'token',
    });
    await expect(a.tryAcquire({ key: 'k', token: 't', ttlMs: 0 })).rejects.toMatchObject({
      option: 'ttlMs',
    });
    await expect(a.extend({ key: 'k', token: 't' }, -1)).rejects.toMatchObject({ option: 'ttlMs' });
    // Expiry times are stored as whole epoch milliseconds in a file name.
    for (const ttlMs of [1.5, Number.POSITIVE_INFINITY, 2 ** 40]) {
      await expect(a.tryAcquire({ key: 'k', token: 't', ttlMs })).rejects.toMatchObject({
        option: 'ttlMs',
      });
    }
  });

  it('refuses a lock directory that is a file, at once, with LockDirectoryError', async () => {
    const file = tempDir('distlock-files-');
    dirs.push(file);
    const notADir = join(file.path, 'plain-file');
    writeFileSync(notADir, 'not a directory');
    const backend = filesBackend({ dir: notADir });
    backends.push(backend);
    const error = await acquire(backend, 'k', 't').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockDirectoryError);
    expect(error).toMatchObject({ option: 'dir', problem: 'not-a-directory', retryable: false });
    await expect(backend.inspect('k')).rejects.toBeInstanceOf(LockDirectoryError);
    await expect(backend.list('')).rejects.toBeInstanceOf(LockDirectoryError);
    // A path under it cannot be created: the cause says why.
    const under = filesBackend({ dir: join(notADir, 'locks') });
    backends.push(under);
    const cause = await acquire(under, 'k', 't').catch((caught: unknown) => caught);
    expect(cause).toMatchObject({ problem: 'unusable', cause: { code: 'ENOTDIR' } });
  });

  it('recovers a key whose head file was deleted (e.g. by a temp cleaner), ignores leftovers', async () => {
    const { dir, clients } = setup(2);
    const [a, b] = clients as [FilesBackend, FilesBackend];
    await acquire(a, 'cleaned', 'old', 1);
    await waitExpired(a, 'cleaned');
    const [keyDir] = readdirSync(dir);
    for (const name of readdirSync(join(dir, keyDir!))) rmSync(join(dir, keyDir!, name));
    mkdirSync(join(dir, '.tmp-crashed-creator'));
    expect(await b.inspect('cleaned')).toBeNull();
    expect(await b.list('')).toEqual([]);
    expect(await acquire(b, 'cleaned', 'new')).toMatchObject({ acquired: true });
    expect(await acquire(a, 'cleaned', 'other')).toMatchObject({ acquired: false });
    expect((await a.list('')).map((info) => info.token)).toEqual(['new']);
  });

  it('keeps one small head file per key however many changes it sees, and none once it is free', async () => {
    const { dir, clients } = setup(1);
    const a = clients[0]!;
    for (let i = 0; i < 50; i += 1) {
      await acquire(a, 'churn', `t${i}`);
      await a.release({ key: 'churn', token: `t${i}` });
    }
    const keyDirs = readdirSync(dir);
    expect(keyDirs).toHaveLength(1);
    // Version 100 (created as 0, then 50 grants and 50 releases), free, last fence 50.
    expect(readdirSync(join(dir, keyDirs[0]!))).toEqual([
      expect.stringMatching(/^100-[0-9a-f]{16}\.f\.50$/),
    ]);
    await a.close();
    // Closing removes the directory of the key it left free; the fence floor remembers its fence.
    expect(readdirSync(dir)).toEqual(['.fence']);
    expect(readdirSync(join(dir, '.fence'))).toEqual(['50']);
  });
});
