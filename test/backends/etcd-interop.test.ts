/**
 * The etcd backend beside etcd's own lock recipe (Go's `concurrency.Mutex`, which `etcdctl lock`
 * runs): on the same name, distlock and the real `etcdctl lock` exclude each other and are served
 * in one create-revision order, whoever comes first, through the API and through `distlock run`.
 * Also the key layout itself: entry names, two holdings of one name in one process, and keys
 * with a `/` in them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3, type IKeyValue } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import { createLocks, type LockManager } from '../../src/core/locks.js';
import { startCli, readLines } from '../cli/cli-process.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { killAndWait, tempDir, waitUntil } from '../harness/process.js';

let server: EtcdServer;
let probe: Etcd3;
let logs: { path: string; remove: () => void };
const managers: LockManager[] = [];
const children: ChildProcess[] = [];
let counter = 0;
const freshName = (label: string) => `interop/${label}-${process.pid}-${(counter += 1)}`;

beforeAll(async () => {
  server = await startEtcd(1);
  probe = new Etcd3({ hosts: server.endpoints.map((e) => `http://${e}`) });
  logs = tempDir('distlock-interop-');
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(children.map((child) => killAndWait(child)));
  await Promise.allSettled(managers.map((m) => m.close()));
  probe?.close();
  await server?.stop();
  logs?.remove();
});

function locks(): LockManager {
  const manager = createLocks({ backend: etcdBackend({ url: server.url }), ttlMs: 30_000 });
  managers.push(manager);
  return manager;
}

/** Every key under `name/`, oldest create revision first (etcd's queue for the name). */
async function queue(name: string): Promise<IKeyValue[]> {
  const response = await probe.kv.range({
    key: Buffer.from(`${name}/`),
    range_end: Buffer.from(`${name}0`), // '0' follows '/': exactly the keys under `name/`
    sort_target: 'Create',
    sort_order: 'Ascend',
  });
  return response.kvs;
}

/**
 * A critical section that logs `start <who> <ms>` and `end <who> <ms>` lines to `log`, holding
 * for `holdS` seconds, or until the file `hold` names exists: the shell command `etcdctl lock`
 * and `distlock run` run.
 */
function section(log: string, who: string, hold: number | string): string[] {
  const wait =
    typeof hold === 'number' ? `sleep ${hold}` : `while [ ! -e ${hold} ]; do sleep 0.05; done`;
  return [
    'sh',
    '-c',
    `echo "start ${who} $(date +%s%3N)" >> ${log}; ${wait}; echo "end ${who} $(date +%s%3N)" >> ${log}`,
  ];
}

/** `etcdctl lock NAME sh -c …`: the real etcd recipe, in its own process. */
function etcdctlLock(name: string, command: string[]): ChildProcess {
  const child = spawn(
    'etcdctl',
    // `--`: the command's own flags (`sh -c`) are not etcdctl's.
    [`--endpoints=${server.endpoints.join(',')}`, 'lock', name, '--', ...command],
    { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

interface Interval {
  readonly who: string;
  readonly start: number;
  readonly end: number;
}

/** The critical sections in a log, in the order they started. */
function intervals(lines: readonly string[]): Interval[] {
  const starts = new Map<string, number>();
  const found: Interval[] = [];
  for (const line of lines) {
    const [kind, who, at] = line.split(' ');
    if (kind === 'start') starts.set(who!, Number(at));
    else found.push({ who: who!, start: starts.get(who!)!, end: Number(at) });
  }
  return found.sort((a, b) => a.start - b.start);
}

function expectNoOverlap(sections: readonly Interval[]): void {
  for (let i = 1; i < sections.length; i += 1) {
    expect(
      sections[i]!.start,
      `${sections[i]!.who} started before ${sections[i - 1]!.who} ended`,
    ).toBeGreaterThanOrEqual(sections[i - 1]!.end);
  }
}

/** Hold the lock for `holdMs` and log the section, through the API. */
async function apiSection(
  manager: LockManager,
  name: string,
  log: string,
  who: string,
  holdMs: number,
): Promise<bigint> {
  return manager.withLock(
    name,
    async (lease) => {
      appendFileSync(log, `start ${who} ${Date.now()}\n`);
      await new Promise((resolve) => setTimeout(resolve, holdMs));
      appendFileSync(log, `end ${who} ${Date.now()}\n`);
      return lease.fence;
    },
    { waitMs: 20_000 },
  );
}

describe('etcd backend and `etcdctl lock` on the same name', () => {
  it('distlock first: etcdctl queues behind it, a later distlock behind etcdctl, in revision order', async () => {
    const name = freshName('api-first');
    const log = join(logs.path, `${counter}.log`);
    const [a, b] = [locks(), locks()];
    const first = await a.acquire(name);
    appendFileSync(log, `start a ${Date.now()}\n`);
    const ctl = etcdctlLock(name, section(log, 'etcdctl', 1));
    await waitUntil('etcdctl queued', async () => (await queue(name)).length === 2, 10_000);
    const second = apiSection(b, name, log, 'b', 300);
    await waitUntil('b queued', async () => (await queue(name)).length === 3, 10_000);
    // One queue, in create-revision order: distlock, etcdctl, distlock.
    const entries = await queue(name);
    expect(entries[0]!.create_revision).toBe(String(first.fence));
    const ctlRevision = BigInt(entries[1]!.create_revision);
    expect((await a.inspect(name))?.waiters).toBe(2);

    await new Promise((resolve) => setTimeout(resolve, 700)); // etcdctl must keep waiting
    expect(readLines(log).some((line) => line.startsWith('start etcdctl'))).toBe(false);
    appendFileSync(log, `end a ${Date.now()}\n`);
    expect(await first.release()).toBe('released');
    expect(await exited(ctl)).toBe(0);
    const bFence = await second;

    const sections = intervals(readLines(log));
    expect(sections.map((s) => s.who)).toEqual(['a', 'etcdctl', 'b']);
    expectNoOverlap(sections);
    expect(ctlRevision).toBeGreaterThan(first.fence);
    expect(bFence).toBeGreaterThan(ctlRevision);
    expect(await queue(name)).toEqual([]);
  }, 30_000);

  it('etcdctl first: distlock queues behind it, a later etcdctl behind distlock, in revision order', async () => {
    const name = freshName('ctl-first');
    const log = join(logs.path, `${counter}.log`);
    const gate = `${log}.gate`; // etcdctl1 holds until the others have queued
    const first = etcdctlLock(name, section(log, 'etcdctl1', gate));
    await waitUntil(
      'etcdctl holds',
      () => readLines(log).some((line) => line.startsWith('start etcdctl1')),
      10_000,
    );
    const a = locks();
    const mine = apiSection(a, name, log, 'a', 300);
    await waitUntil('a queued', async () => (await queue(name)).length === 2, 10_000);
    const second = etcdctlLock(name, section(log, 'etcdctl2', 0.2));
    await waitUntil('etcdctl2 queued', async () => (await queue(name)).length === 3, 10_000);
    const entries = await queue(name);
    const firstRevision = BigInt(entries[0]!.create_revision);
    const lastRevision = BigInt(entries[2]!.create_revision);
    // distlock sees etcdctl's entry as the holder of the name.
    expect((await a.inspect(name))?.fence).toBe(firstRevision);
    expect(readLines(log).some((line) => line.startsWith('start a'))).toBe(false);
    appendFileSync(gate, '');

    const fence = await mine;
    expect(await exited(first)).toBe(0);
    expect(await exited(second)).toBe(0);
    const sections = intervals(readLines(log));
    expect(sections.map((s) => s.who)).toEqual(['etcdctl1', 'a', 'etcdctl2']);
    expectNoOverlap(sections);
    expect(fence).toBeGreaterThan(firstRevision);
    expect(lastRevision).toBeGreaterThan(fence);
    expect(await queue(name)).toEqual([]);
  }, 30_000);

  it('`distlock run NAME` and `etcdctl lock NAME` exclude each other, in both orders', async () => {
    for (const distlockFirst of [true, false]) {
      const name = freshName(distlockFirst ? 'run-first' : 'run-second');
      const log = join(logs.path, `${counter}.log`);
      // The first holder holds until the second has queued behind it (its entry is in etcd).
      const gate = `${log}.gate`;
      const run = (hold: number | string) => {
        const cli = startCli([
          'run',
          name,
          '--backend',
          server.url,
          '--wait',
          '20s',
          '--',
          ...section(log, 'run', hold),
        ]);
        children.push(cli.child);
        return cli.done;
      };
      const started = (who: string) =>
        waitUntil(
          `${who} holds`,
          () => readLines(log).some((line) => line.startsWith(`start ${who}`)),
          15_000,
        );
      const [first, second] = distlockFirst ? ['run', 'etcdctl'] : ['etcdctl', 'run'];
      const lockWithEtcdctl = () =>
        etcdctlLock(name, section(log, 'etcdctl', distlockFirst ? 0.3 : gate));
      const firstRun = distlockFirst ? run(gate) : undefined;
      const firstCtl = distlockFirst ? undefined : lockWithEtcdctl();
      await started(first!);
      const ctl = firstCtl ?? lockWithEtcdctl();
      const laterRun = firstRun ?? run(0.3);
      await waitUntil(`${second} queued`, async () => (await queue(name)).length === 2, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(readLines(log).some((line) => line.startsWith(`start ${second}`))).toBe(false);
      appendFileSync(gate, '');
      const [result, ctlCode] = await Promise.all([laterRun, exited(ctl)]);
      expect(result.code, result.stderr).toBe(0);
      expect(ctlCode).toBe(0);
      const sections = intervals(readLines(log));
      expect(sections.map((s) => s.who)).toEqual([first, second]);
      expectNoOverlap(sections);
      expect(await queue(name)).toEqual([]);
    }
  }, 60_000);
});

describe('etcd key layout', () => {
  it("writes etcd's recipe keys: NAME/<lease hex>, then NAME/<lease hex>-<n> for a second holding of the same lease", async () => {
    const name = freshName('names');
    const manager = locks();
    const first = await manager.acquire(name);
    const second = manager.acquire(name); // same backend, same TTL: the same session lease
    await waitUntil('second queued', async () => (await queue(name)).length === 2, 10_000);
    const [holder, waiter] = await queue(name);
    const hex = BigInt(holder!.lease).toString(16);
    expect(holder!.key.toString()).toBe(`${name}/${hex}`);
    expect(waiter!.key.toString()).toBe(`${name}/${hex}-1`);
    expect(holder!.value.toString()).toBe(first.token);
    await first.release();
    const lease = await second;
    expect(lease.fence).toBe(BigInt(waiter!.create_revision));
    await lease.release();
    expect(await queue(name)).toEqual([]);
  });

  it('a key with a `/` is its own lock: `a` and `a/b` never wait for each other', async () => {
    const base = freshName('nested');
    const [x, y] = [locks(), locks()];
    const inner = await x.acquire(`${base}/b`);
    // etcd's recipe would make `base` wait here (its prefix covers `base/b/…`); distlock does not.
    const outer = await y.tryAcquire(base);
    expect(outer).not.toBeNull();
    expect((await y.inspect(base))?.token).toBe(outer!.token);
    expect((await y.inspect(`${base}/b`))?.token).toBe(inner.token);
    expect(await x.tryAcquire(`${base}/b`)).toBeNull();
    // A waiter on `base` is served when `base` is released, whatever happens to `base/b`.
    const waiting = x.acquire(base, { waitMs: 10_000 });
    await waitUntil('queued on base', async () => (await y.inspect(base))?.waiters === 1);
    await outer!.release();
    const next = await waiting;
    expect((await y.list(`${base}`)).map((info) => info.key).sort()).toEqual([base, `${base}/b`]);
    await Promise.all([next.release(), inner.release()]);
  });
});

describe("shared entries beside etcd's recipe", () => {
  it('readers and permits write recipe keys, with their claim in the value, that `etcdctl get --prefix` shows', async () => {
    const [a, b] = [locks(), locks()];
    const name = freshName('shared-keys');
    const readers = [await a.readWrite(name).read(), await b.readWrite(name).read()];
    const semaphore = freshName('permit-keys');
    const permit = await a.semaphore(semaphore, { limit: 3 }).acquire();
    const get = (prefix: string) =>
      new Promise<Array<{ key: string; value: Buffer; lease: string }>>((resolve, reject) => {
        const child = spawn(
          'etcdctl',
          [`--endpoints=${server.endpoints.join(',')}`, 'get', '--prefix', prefix, '-w', 'json'],
          { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.once('error', reject);
        child.once('close', (code) => {
          if (code !== 0) return reject(new Error(`etcdctl get exited ${code}`));
          // Lease IDs exceed 2^53: read them as strings before parsing.
          const json = out.replace(/"lease":(\d+)/g, '"lease":"$1"');
          const kvs = (JSON.parse(json) as { kvs?: Array<Record<string, string>> }).kvs ?? [];
          resolve(
            kvs.map((kv) => ({
              key: Buffer.from(kv.key!, 'base64').toString(),
              value: Buffer.from(kv.value!, 'base64'),
              lease: kv.lease!,
            })),
          );
        });
      });
    const shown = await get(`${name}/`);
    expect(shown).toHaveLength(2);
    // etcdctl lists by key (the lease in hex), not by create revision: compare as sets.
    for (const kv of shown) expect(kv.key).toBe(`${name}/${BigInt(kv.lease).toString(16)}`);
    const readerValue = (token: string) =>
      Buffer.concat([
        Buffer.from([0xff]),
        Buffer.from('r'),
        Buffer.from([0xff]),
        Buffer.from(token),
      ]);
    expect(shown.map((kv) => kv.value.toString('hex')).sort()).toEqual(
      readers.map((lease) => readerValue(lease.token).toString('hex')).sort(),
    );
    const [permitKv] = await get(`${semaphore}/`);
    expect(permitKv!.value).toEqual(
      Buffer.concat([
        Buffer.from([0xff]),
        Buffer.from('s3'),
        Buffer.from([0xff]),
        Buffer.from(permit.token),
      ]),
    );
    // The values a mutex and etcd's recipe write are unchanged: the bare token, or nothing.
    const mutex = freshName('mutex-value');
    const lease = await a.acquire(mutex);
    expect((await get(`${mutex}/`))[0]!.value.toString()).toBe(lease.token);
    await Promise.all([...readers, permit, lease].map((held) => held.release()));
    expect(await queue(name)).toEqual([]);
  });

  it('`etcdctl lock` waits for distlock readers, and readers that arrive after it wait behind it', async () => {
    const name = freshName('readers-ctl');
    const log = join(logs.path, `${counter}.log`);
    const [a, b] = [locks(), locks()];
    const r1 = await a.readWrite(name).read();
    const r2 = await b.readWrite(name).read();
    appendFileSync(log, `start readers ${Date.now()}\n`);
    const ctl = etcdctlLock(name, section(log, 'etcdctl', 0.3));
    await waitUntil('etcdctl queued', async () => (await queue(name)).length === 3, 10_000);
    // A reader after a waiting writer (etcd's Go mutex) queues behind it.
    expect(await a.readWrite(name).tryRead()).toBeNull();
    const late = b
      .readWrite(name)
      .read({ waitMs: 20_000 })
      .then((lease) => {
        appendFileSync(log, `start late ${Date.now()}\n`);
        return lease;
      });
    await waitUntil('late reader queued', async () => (await queue(name)).length === 4, 10_000);
    const info = await a.inspect(name);
    expect(info?.mode).toBe('shared');
    expect(info?.holders.map((h) => h.token)).toEqual([r1.token, r2.token]);
    expect(info?.waiters).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 500)); // etcdctl must keep waiting
    expect(readLines(log).some((line) => line.startsWith('start etcdctl'))).toBe(false);
    await r1.release();
    await new Promise((resolve) => setTimeout(resolve, 300)); // one reader is still in
    expect(readLines(log).some((line) => line.startsWith('start etcdctl'))).toBe(false);
    appendFileSync(log, `end readers ${Date.now()}\n`);
    await r2.release();
    expect(await exited(ctl)).toBe(0);
    const reader = await late;
    appendFileSync(log, `end late ${Date.now()}\n`);
    const sections = intervals(readLines(log));
    expect(sections.map((s) => s.who)).toEqual(['readers', 'etcdctl', 'late']);
    expectNoOverlap(sections);
    expect(reader.fence).toBeGreaterThan(r2.fence);
    await reader.release();
    expect(await queue(name)).toEqual([]);
  }, 30_000);

  it('`distlock run --shared` holders run together on etcd while `etcdctl lock` waits for both', async () => {
    const name = freshName('run-shared');
    const log = join(logs.path, `${counter}.log`);
    const gate = `${log}.gate`;
    const runs = ['r1', 'r2'].map((who) => {
      const cli = startCli([
        'run',
        name,
        '--shared',
        '--backend',
        server.url,
        '--wait',
        '20s',
        '--',
        ...section(log, who, gate),
      ]);
      children.push(cli.child);
      return cli.done;
    });
    await waitUntil(
      'both readers in',
      () => readLines(log).filter((line) => line.startsWith('start r')).length === 2,
      20_000,
    );
    const ctl = etcdctlLock(name, section(log, 'etcdctl', 0.1));
    await waitUntil('etcdctl queued', async () => (await queue(name)).length === 3, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readLines(log).some((line) => line.startsWith('start etcdctl'))).toBe(false);
    appendFileSync(gate, '');
    for (const result of await Promise.all(runs)) expect(result.code, result.stderr).toBe(0);
    expect(await exited(ctl)).toBe(0);
    const sections = intervals(readLines(log));
    const ctlSection = sections.find((s) => s.who === 'etcdctl')!;
    for (const reader of sections.filter((s) => s.who !== 'etcdctl')) {
      expect(ctlSection.start).toBeGreaterThanOrEqual(reader.end);
    }
    expect(await queue(name)).toEqual([]);
  }, 60_000);
});
