/**
 * What the files backend adds to the shared kinds tests (issue 14): writer intents — kept alive
 * while a writer waits, withdrawn when it stops, expiring when its process dies — a mutex key that
 * never pays for them, and a read-write lock used by several OS processes at once.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filesBackend, INTENT_TTL_MS } from '../../src/backends/files/index.js';
import { LockTimeoutError } from '../../src/core/errors.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { maxOverlap, type Interval } from '../../src/testing/children.js';
import { startScript, tempDirs } from '../fixtures/files-scripts.js';
import { waitUntil } from '../harness/process.js';

const temp = tempDirs('distlock-files-kinds-');
const managers: LockManager[] = [];
afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
  temp.removeAll();
});

const lockDir = () => join(temp.make(), 'locks');

function clients(dir: string, count: number): LockManager[] {
  return Array.from({ length: count }, () => {
    const locks = createLocks({ backend: filesBackend({ dir }), ttlMs: 30_000, waitMs: 30_000 });
    managers.push(locks);
    return locks;
  });
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

const node = (source: string) => startScript(source);

/** Until `key` shows `count` waiting writers (their intents). */
async function intents(locks: LockManager, key: string, count: number): Promise<void> {
  await waitUntil(
    `${count} intents on ${key}`,
    async () => {
      const info = await locks.inspect(key);
      return (info?.waiters ?? 0) === count;
    },
    30_000,
    10,
  );
}

describe('files backend: writer intents', () => {
  it(`a writer that dies while waiting keeps new readers out for at most INTENT_TTL_MS (${INTENT_TTL_MS} ms)`, async () => {
    const dir = lockDir();
    const [a, b] = clients(dir, 2) as [LockManager, LockManager];
    const reader = await a.readWrite('doc').read();
    const writer = node(`
      const locks = createLocks({ backend: filesBackend({ dir: ${JSON.stringify(dir)} }) });
      await locks.readWrite('doc').write({ waitMs: 600_000 });
    `);
    try {
      await intents(a, 'doc', 1);
      writer.child.kill('SIGKILL');
      await writer.exited;
      const killedAt = now();
      expect(
        await b.readWrite('doc').tryRead(),
        'the dead writer was forgotten at once',
      ).toBeNull();
      const late = await b.readWrite('doc').read({ waitMs: INTENT_TTL_MS + 5_000 });
      const waited = now() - killedAt;
      expect(waited).toBeLessThan(INTENT_TTL_MS + 2_000);
      expect((await a.inspect('doc'))?.holders).toHaveLength(2);
      await late.release();
    } finally {
      writer.child.kill('SIGKILL');
      await reader.release();
    }
  }, 60_000);

  it('a waiting writer keeps its intent alive past INTENT_TTL_MS, and gets the key first', async () => {
    const dir = lockDir();
    const [a, b, c] = clients(dir, 3) as [LockManager, LockManager, LockManager];
    const reader = await a.readWrite('doc').read();
    const writing = b.readWrite('doc').write({ waitMs: 30_000 });
    await intents(a, 'doc', 1);
    const until = Date.now() + INTENT_TTL_MS + 1_500;
    while (Date.now() < until) {
      expect(await c.readWrite('doc').tryRead(), 'a reader passed the waiting writer').toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const lateReader = c.readWrite('doc').read({ waitMs: 30_000 });
    await reader.release();
    const writer = await writing;
    expect((await a.inspect('doc'))?.waiters).toBeUndefined();
    await writer.release();
    const late = await lateReader;
    expect(late.fence).toBeGreaterThan(writer.fence);
    await late.release();
  }, 30_000);

  it('a writer that stops waiting (abort, deadline, close) withdraws its intent at once', async () => {
    const dir = lockDir();
    const [a, b] = clients(dir, 2) as [LockManager, LockManager];
    const reader = await a.readWrite('doc').read();

    // Promptly: well before the intent could have expired by itself (INTENT_TTL_MS after the
    // last refresh). The caller's promise may settle a moment before (the core waits for a
    // backend's leaving only so long, then releases the token itself).
    const withdrawn = (what: string) =>
      waitUntil(
        `the intent withdrawn after ${what}`,
        async () => (await a.inspect('doc'))?.waiters === undefined,
        INTENT_TTL_MS / 2,
        5,
      );

    const controller = new AbortController();
    const aborted = b.readWrite('doc').write({ signal: controller.signal });
    await intents(a, 'doc', 1);
    controller.abort(new Error('gave up'));
    await expect(aborted).rejects.toThrow('gave up');
    await withdrawn('an abort');
    const next = await b.readWrite('doc').tryRead();
    expect(next, 'the intent outlived the abort').not.toBeNull();
    await next!.release();

    const timingOut = b.readWrite('doc').write({ waitMs: 500 });
    await intents(a, 'doc', 1);
    await expect(timingOut).rejects.toBeInstanceOf(LockTimeoutError);
    await withdrawn('a deadline');

    const [closing] = clients(dir, 1) as [LockManager];
    const pending = closing
      .readWrite('doc')
      .write()
      .catch((error: unknown) => error);
    await intents(a, 'doc', 1);
    await closing.close();
    expect(((await pending) as Error).name).toBe('LockClosedError');
    await withdrawn('close()');
    await reader.release();
  }, 30_000);

  it('a key only ever used as a mutex keeps its whole state in one file name, also under contention', async () => {
    const dir = lockDir();
    const contenders = clients(dir, 4);
    /** The names in `path`, none while it does not exist (yet). */
    const names = (path: string) => {
      try {
        return readdirSync(path);
      } catch {
        return [];
      }
    };
    const seen = new Set<string>();
    let done = false;
    const sampling = (async () => {
      while (!done) {
        for (const keyDir of names(dir).filter((name) => /^[0-9a-f]{64}$/.test(name))) {
          for (const name of names(join(dir, keyDir))) {
            seen.add(name.replace(/^[0-9]+-[0-9a-f]+\./, ''));
          }
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await Promise.all(
      contenders.map(async (locks) => {
        for (let i = 0; i < 15; i += 1) {
          await locks.withLock('mutex', () => new Promise((resolve) => setTimeout(resolve, 2)));
        }
      }),
    );
    done = true;
    await sampling;
    const kinds = new Set([...seen].map((name) => name.split('.')[0]));
    expect(kinds).toContain('x');
    // Free, held, or new: never a data file (`s`, `d.`) with an intent in it.
    for (const kind of kinds) expect(['n', 'f', 'x']).toContain(kind);
    // Once a reader has used it, a waiting writer announces itself.
    const [reader, writer] = contenders as [LockManager, LockManager];
    const read = await reader.readWrite('mutex').read();
    const writing = writer.acquire('mutex');
    await intents(reader, 'mutex', 1);
    await read.release();
    await (await writing).release();
  }, 60_000);
});

describe('files backend: read-write lock across processes', () => {
  it('writers exclude everyone and readers share, among 4 OS processes; fences follow the writers', async () => {
    const dir = lockDir();
    const out = join(dir, '..', 'intervals.jsonl');
    writeFileSync(out, '');
    const iterations = 25;
    const contender = `
      import { appendFileSync } from 'node:fs';
      const now = () => Number(process.hrtime.bigint()) / 1e6;
      const locks = createLocks({ backend: filesBackend({ dir: ${JSON.stringify(dir)} }), waitMs: 60_000 });
      const rw = locks.readWrite('doc');
      for (let i = 0; i < ${iterations}; i += 1) {
        const write = Math.random() < 0.3;
        const lease = write ? await rw.write() : await rw.read();
        const start = now();
        await new Promise((r) => setTimeout(r, write ? 2 + Math.random() * 4 : 5 + Math.random() * 15));
        const end = now();
        appendFileSync(${JSON.stringify(out)}, JSON.stringify({ pid: process.pid, mode: lease.mode, fence: String(lease.fence), start, end }) + '\\n');
        await lease.release();
      }
      await locks.close();
    `;
    const children = Array.from({ length: 4 }, () => node(contender));
    const results = await Promise.all(children.map((c) => c.exited));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    const intervals = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Interval & { mode: 'exclusive' | 'shared' });
    expect(intervals).toHaveLength(4 * iterations);
    const writes = intervals.filter((i) => i.mode === 'exclusive');
    const reads = intervals.filter((i) => i.mode === 'shared');
    expect(writes.length).toBeGreaterThan(0);
    expect(maxOverlap(reads), 'readers never shared the key').toBeGreaterThan(1);
    expect(new Set(intervals.map((i) => i.fence)).size, 'a fence was issued twice').toBe(
      intervals.length,
    );
    for (const w of writes) {
      for (const other of intervals) {
        if (other === w) continue;
        const overlap = other.start < w.end && w.start < other.end;
        expect(overlap, `a writer overlapped a ${other.mode} holder`).toBe(false);
        // Whatever ended before a writer started was granted before it, and the other way round.
        if (other.end <= w.start) expect(BigInt(other.fence)).toBeLessThan(BigInt(w.fence));
        if (w.end <= other.start) expect(BigInt(other.fence)).toBeGreaterThan(BigInt(w.fence));
      }
    }
  }, 120_000);
});
