/**
 * The files backend's state stays bounded (issue 13.9): the directories of free keys are removed,
 * while fences keep strictly increasing per key — across removals, restarts, processes racing the
 * removals, data lost in a crash, and lock directories written by earlier versions (per-key
 * versions as fences).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filesBackend, type FilesBackend } from '../../src/backends/files/index.js';
import { createLocks } from '../../src/core/locks.js';
import { maxOverlap, type Interval } from '../../src/testing/children.js';
import { startScript, tempDirs } from '../fixtures/files-scripts.js';

const temp = tempDirs('distlock-files-state-');
const backends: FilesBackend[] = [];
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
  temp.removeAll();
});

const lockDir = () => join(temp.make(), 'locks');

function open(dir: string, options: { fsync?: boolean } = {}): FilesBackend {
  const backend = filesBackend({ dir, ...options });
  backends.push(backend);
  return backend;
}

const keyDirName = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

/** Entries of the lock directory other than the fence floor. */
const leftOver = (dir: string) => readdirSync(dir).filter((name) => name !== '.fence');

/** The fence floor's value. */
const floorOf = (dir: string) => BigInt(readdirSync(join(dir, '.fence'))[0] ?? '0');

async function take(backend: FilesBackend, key: string, token = 't', ttlMs = 60_000) {
  const result = await backend.tryAcquire({ key, token, ttlMs });
  if (!result.acquired) throw new Error(`${key} is held`);
  return result.fence;
}

const node = (source: string) => startScript(source);

describe('files backend: bounded state', () => {
  it('100,000 distinct keys locked by two processes leave nothing behind but the fence floor', async () => {
    const dir = lockDir();
    const total = 100_000;
    const processes = 2;
    const worker = (first: number, count: number) => `
      const backend = filesBackend({ dir: ${JSON.stringify(dir)}, fsync: false });
      let next = ${first};
      const end = ${first + count};
      let top = 0n;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (next < end) {
          const key = 'order:' + next++;
          const result = await backend.tryAcquire({ key, token: 't', ttlMs: 60_000 });
          if (!result.acquired) throw new Error(key + ' was held');
          if (result.fence > top) top = result.fence;
          if ((await backend.release({ key, token: 't' })) !== 'released') throw new Error(key);
        }
      }));
      await backend.close();
      console.log(String(top));
    `;
    // Created first, so that the sampling below has a directory to read.
    await take(open(dir), 'warm-up');
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, leftOver(dir).length);
    }, 1_000);
    try {
      const per = total / processes;
      const results = await Promise.all(
        Array.from({ length: processes }, (_, i) => node(worker(i * per, per)).exited),
      );
      for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
      const top = results.reduce((max, r) => {
        const fence = BigInt(r.stdout.trim());
        return fence > max ? fence : max;
      }, 0n);
      // Only the warm-up key (still held) is left, and the floor is above every fence issued.
      expect(leftOver(dir)).toEqual([keyDirName('warm-up')]);
      expect(floorOf(dir)).toBeGreaterThanOrEqual(top);
      // Removal keeps up while keys are locked: never more than about a second's worth wait for it.
      expect(peak).toBeLessThan(25_000);
    } finally {
      clearInterval(sampler);
    }
  }, 900_000);

  it('fences keep increasing for a key whose directory was removed, across backends', async () => {
    const dir = lockDir();
    const a = open(dir);
    const first = await take(a, 'k');
    await a.release({ key: 'k', token: 't' });
    const other = await take(a, 'other');
    await a.release({ key: 'other', token: 't' });
    await a.close(); // removes what it left free, after raising the floor
    expect(leftOver(dir)).toEqual([]);
    expect(floorOf(dir)).toBe(other);
    const b = open(dir);
    const second = await take(b, 'k');
    expect(second).toBeGreaterThan(first);
    expect(second).toBeGreaterThan(other); // a new directory starts above the floor
  });

  it('sweeps what a process that died left: expired holders, keys freed without close()', async () => {
    const dir = lockDir();
    const ttlMs = 1_500;
    const died = await node(`
      const backend = filesBackend({ dir: ${JSON.stringify(dir)} });
      for (let i = 0; i < 20; i += 1) {
        await backend.tryAcquire({ key: 'freed-' + i, token: 't', ttlMs: 60_000 });
        await backend.release({ key: 'freed-' + i, token: 't' });
        await backend.tryAcquire({ key: 'expired-' + i, token: 't', ttlMs: ${ttlMs} });
      }
      await backend.tryAcquire({ key: 'held', token: 't', ttlMs: 60_000 });
      process.exit(0); // no close(), no release: holders that crashed
    `).exited;
    const exitedAt = Date.now();
    expect(died, died.stderr).toMatchObject({ code: 0 });
    // The holders that crashed and the live one at least (its reaper may have removed freed keys).
    const left = leftOver(dir).length;
    expect(left).toBeGreaterThanOrEqual(21);
    const sweeper = open(dir);
    // Nothing is old enough yet for the automatic sweeps: they wait a minute of idleness.
    expect(await sweeper.sweep()).toBe(0);
    // Once the crashed holders' TTL has ended, everything but the live holder goes.
    await new Promise((resolve) => setTimeout(resolve, exitedAt + ttlMs + 100 - Date.now()));
    expect(await sweeper.sweep(0)).toBe(left - 1);
    expect(leftOver(dir)).toEqual([keyDirName('held')]);
    const fence = await take(sweeper, 'expired-3');
    expect(fence).toBeGreaterThan(1n);
  });

  it('a removal racing takers across processes never lets a fence go backwards or two hold at once', async () => {
    const dir = lockDir();
    const out = join(dir, '..', 'intervals.jsonl');
    writeFileSync(out, '');
    const sweeper = open(dir);
    await take(sweeper, 'k0');
    await sweeper.release({ key: 'k0', token: 't' });
    const contender = `
      import { appendFileSync } from 'node:fs';
      const backend = filesBackend({ dir: ${JSON.stringify(dir)} });
      const now = () => Number(process.hrtime.bigint()) / 1e6;
      let held = 0;
      let n = 0;
      while (held < 30) {
        const key = 'k' + (n % 3);
        const token = process.pid + '-' + n++;
        const result = await backend.tryAcquire({ key, token, ttlMs: 60_000 });
        if (!result.acquired) { await new Promise((r) => setTimeout(r, Math.random() * 3)); continue; }
        const start = now();
        await new Promise((r) => setImmediate(r));
        const end = now();
        appendFileSync(${JSON.stringify(out)}, JSON.stringify({ key, pid: process.pid, fence: String(result.fence), start, end }) + '\\n');
        held += 1;
        if ((await backend.release({ key, token })) !== 'released') throw new Error('lost ' + key);
        await new Promise((r) => setTimeout(r, Math.random() * 3));
      }
      await backend.close();
    `;
    const children = Array.from({ length: 3 }, () => node(contender).exited);
    // Meanwhile, remove every free key directory as soon as it is free, again and again.
    let swept = 0;
    let running = true;
    const sweeping = (async () => {
      while (running) swept += await sweeper.sweep(0);
    })();
    const results = await Promise.all(children);
    running = false;
    await sweeping;
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(swept, 'the sweeper never removed a directory: no race happened').toBeGreaterThan(0);
    const grants = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Interval & { key: string });
    for (const key of ['k0', 'k1', 'k2']) {
      const ofKey = grants.filter((g) => g.key === key).sort((x, y) => x.start - y.start);
      expect(ofKey.length, key).toBeGreaterThan(5);
      expect(maxOverlap(ofKey), `two held ${key} at once`).toBe(1);
      for (let i = 1; i < ofKey.length; i += 1) {
        expect(BigInt(ofKey[i]!.fence), `${key}: fence ${i}`).toBeGreaterThan(
          BigInt(ofKey[i - 1]!.fence),
        );
      }
    }
  }, 120_000);

  it('an older lock directory (fences were per-key versions) keeps its fences increasing', async () => {
    const dir = lockDir();
    mkdirSync(dir, { mode: 0o700, recursive: true });
    const legacy = (key: string, head: string, extra: string[] = []) => {
      const keyDir = join(dir, keyDirName(key));
      mkdirSync(keyDir);
      writeFileSync(join(keyDir, head), key);
      for (const name of extra) writeFileSync(join(keyDir, name), 'left-over');
    };
    const token = Buffer.from('old-holder').toString('base64url');
    legacy('free', '57.f');
    legacy('held', `9.h.7.${Date.now() + 3_600_000}.${token}`, ['t.some-digest']);
    legacy('idle', '120.f');
    const backend = open(dir);
    const locks = createLocks({ backend });
    expect(await take(backend, 'free')).toBe(58n);
    // A holder from the old layout is still a holder, with its fence and token.
    expect(await locks.inspect('held')).toMatchObject({ token: 'old-holder', fence: 7n });
    expect(await locks.tryAcquire('held')).toBeNull();
    expect(await locks.release('held', 'old-holder')).toBe('released');
    expect(await take(backend, 'held')).toBe(10n); // above the old head's version, 9
    // The sweep removes old directories too, raising the floor above their versions first.
    expect(await backend.sweep(0)).toBe(1);
    expect(leftOver(dir).sort()).toEqual([keyDirName('free'), keyDirName('held')].sort());
    expect(floorOf(dir)).toBe(120n);
    expect(await take(backend, 'idle')).toBe(121n);
    // An older version still running creates its directories anew, counting from 0: the floor
    // keeps the fences this version issues above everything it issued before.
    legacy('recreated', '2.f');
    expect(await take(backend, 'recreated')).toBe(121n);
    expect((await locks.list('')).map((info) => info.key)).toEqual([
      'free',
      'held',
      'idle',
      'recreated',
    ]);
  });

  it('a data file lost in a crash (missing or empty) frees the key and keeps its last fence', async () => {
    const dir = lockDir();
    mkdirSync(dir, { mode: 0o700, recursive: true });
    for (const [key, data] of [
      ['missing', undefined],
      ['empty', ''],
    ] as const) {
      const keyDir = join(dir, keyDirName(key));
      mkdirSync(keyDir);
      writeFileSync(join(keyDir, '3-0123456789abcdef.s.41.00aa00aa00aa'), key);
      if (data !== undefined)
        writeFileSync(join(keyDir, 'd.3-0123456789abcdef.00aa00aa00aa'), data);
    }
    const backend = open(dir);
    expect(await backend.inspect('missing')).toBeNull();
    expect(await take(backend, 'missing')).toBe(42n);
    expect(await take(backend, 'empty')).toBe(42n);
  });
});
