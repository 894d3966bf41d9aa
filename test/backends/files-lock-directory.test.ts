/**
 * The files backend's lock directory against other local users (issue 13.7) and against paths
 * that cannot be used (13.2). Run as root, the tests create directories owned by `nobody`,
 * world-writable ones and symlinks, and run processes as `nobody` (runuser), the way an attacker
 * sharing the host would.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  readdirSync,
  renameSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  defaultLockDirectory,
  filesBackend,
  LockDirectoryError,
  type FilesBackend,
} from '../../src/backends/files/index.js';
import { createLocks } from '../../src/core/locks.js';
import { startScript, tempDirs } from '../fixtures/files-scripts.js';

const NOBODY = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
const NOGROUP = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());

const temp = tempDirs('distlock-files-dir-');
const backends: FilesBackend[] = [];
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
  temp.removeAll();
});

/** A directory like /tmp: anyone may create entries in it, only their owner may move them. */
function sharedTmp(): string {
  const dir = temp.make();
  chmodSync(dir, 0o1777);
  return dir;
}

/** Run a shell command as `nobody`; its exit code. */
function asNobody(command: string): number {
  try {
    execFileSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', command], { stdio: 'ignore' });
    return 0;
  } catch (error) {
    return (error as { status?: number }).status ?? -1;
  }
}

/**
 * Run `body` (an async function body using `filesBackend`, `createLocks` and `outcome`) in a new
 * Node process (as `nobody` if asked), and return what it returned, through JSON. Only the public
 * API of the backend is used, so the same script runs against any version of it.
 */
async function runScript(
  body: string,
  options: { env?: Record<string, string | undefined>; user?: 'nobody' } = {},
): Promise<unknown> {
  const { code, stdout, stderr } = await startScript(
    `
    const outcome = async (call) => {
      try {
        const value = await call();
        return { ok: true, fence: value?.fence === undefined ? undefined : String(value.fence) };
      } catch (error) {
        return { ok: false, name: error.name, problem: error.problem, code: error.code };
      }
    };
    console.log(JSON.stringify(await (async () => { ${body} })()));
    process.exit(0);
  `,
    options,
  ).exited;
  const last = stdout.trim().split('\n').at(-1);
  if (code !== 0 || !last) throw new Error(`script exited ${code}: ${stderr}`);
  return JSON.parse(last);
}

/** Take `key` once, without waiting; what happened. */
const TRY_KEY = (key: string) => `
  const locks = createLocks({ backend: filesBackend(), ttlMs: 60_000 });
  const result = await outcome(() => locks.acquire(${JSON.stringify(key)}, { waitMs: 0 }));
  await locks.close().catch(() => undefined);
  return result;
`;

describe('files lock directory: other users', () => {
  it("another user cannot pre-create the default directory, nor move a held key's directory", async () => {
    const tmp = sharedTmp();
    // The default for this process's user with TMPDIR=tmp (and no XDG_RUNTIME_DIR).
    const env = { TMPDIR: tmp, XDG_RUNTIME_DIR: undefined };
    const root = join(tmp, `distlock-${process.geteuid!()}`);

    // The attack of issue 13.7: `nobody` creates the root first, open to everyone.
    expect(asNobody(`mkdir -m 0777 ${root}`)).toBe(0);
    expect(await runScript(TRY_KEY('k'), { env })).toEqual({
      ok: false,
      name: 'LockDirectoryError',
      problem: 'foreign-owner',
      code: 'INVALID_ARGUMENT',
    });
    expect(readdirSync(root), 'the refused directory was used').toEqual([]);
    execFileSync('rm', ['-rf', root]);

    // Without the attacker's help the default is created private, and the key held in it stays held.
    const holder = createLocks({ backend: filesBackend({ dir: root }), ttlMs: 60_000 });
    const lease = await holder.acquire('k');
    const stats = statSync(root);
    expect(stats.uid).toBe(process.geteuid!());
    expect(stats.mode & 0o777).toBe(0o700);
    const [keyDir] = readdirSync(root).filter((name) => /^[0-9a-f]{64}$/.test(name));
    expect(asNobody(`mv ${join(root, keyDir!)} ${join(tmp, 'stolen')}`)).not.toBe(0);
    expect(asNobody(`mkdir ${join(root, 'planted')}`)).not.toBe(0);
    expect(await runScript(TRY_KEY('k'), { env }), 'a second process took a held lock').toEqual({
      ok: false,
      name: 'LockTimeoutError',
      code: 'TIMEOUT',
    });
    await lease.release();
    const next = await runScript(TRY_KEY('k'), { env });
    expect(next).toMatchObject({ ok: true });
    expect(BigInt((next as { fence: string }).fence)).toBeGreaterThan(lease.fence);
    await holder.close();
  }, 60_000);

  it('defaults to $XDG_RUNTIME_DIR/distlock, else <tmpdir>/distlock-<uid>', () => {
    const saved = { xdg: process.env.XDG_RUNTIME_DIR, tmp: process.env.TMPDIR };
    try {
      process.env.XDG_RUNTIME_DIR = '/run/user/1234';
      expect(defaultLockDirectory()).toBe('/run/user/1234/distlock');
      process.env.XDG_RUNTIME_DIR = 'relative/ignored';
      process.env.TMPDIR = '/some/tmp';
      expect(defaultLockDirectory()).toBe(`/some/tmp/distlock-${process.geteuid!()}`);
      delete process.env.XDG_RUNTIME_DIR;
      expect(defaultLockDirectory()).toBe(`/some/tmp/distlock-${process.geteuid!()}`);
    } finally {
      for (const [name, value] of [
        ['XDG_RUNTIME_DIR', saved.xdg],
        ['TMPDIR', saved.tmp],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  /** The error the first call on a backend over `dir` rejects with (every call rejects alike). */
  async function refusal(dir: string): Promise<LockDirectoryError> {
    const backend = filesBackend({ dir });
    backends.push(backend);
    const error = await backend
      .tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })
      .catch((e: unknown) => e);
    await expect(backend.inspect('k')).rejects.toBeInstanceOf(LockDirectoryError);
    expect(error).toBeInstanceOf(LockDirectoryError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', option: 'dir', retryable: false });
    return error as LockDirectoryError;
  }

  it('refuses a directory another user owns, or that others can write, or a symlink', async () => {
    const base = temp.make();
    const at = (name: string, mode: number, uid = process.geteuid!()) => {
      const path = join(base, name);
      mkdirSync(path);
      chmodSync(path, mode);
      chownSync(path, uid, NOGROUP);
      return path;
    };
    expect(await refusal(at('nobodys', 0o700, NOBODY))).toMatchObject({ problem: 'foreign-owner' });
    expect(await refusal(at('world', 0o777))).toMatchObject({ problem: 'writable-by-others' });
    expect(await refusal(at('group', 0o770))).toMatchObject({ problem: 'writable-by-others' });
    // Sticky does not make the lock directory itself safe: others could still add entries.
    expect(await refusal(at('sticky', 0o1777))).toMatchObject({ problem: 'writable-by-others' });
    const target = at('target', 0o700);
    symlinkSync(target, join(base, 'link'));
    expect(await refusal(join(base, 'link'))).toMatchObject({ problem: 'symlink' });

    // Directories above it: another user's, or writable by others without the sticky bit.
    const foreignParent = at('foreign-parent', 0o755, NOBODY);
    expect(await refusal(join(foreignParent, 'locks'))).toMatchObject({
      problem: 'foreign-owner',
      path: foreignParent,
    });
    const openParent = at('open-parent', 0o777);
    const refused = await refusal(join(openParent, 'locks'));
    expect(refused).toMatchObject({ problem: 'writable-by-others', path: openParent });
    // The refused path was created (private) but never used.
    expect(readdirSync(join(openParent, 'locks'))).toEqual([]);
    // Under a sticky one (like /tmp) it is fine, and created private.
    const stickyParent = at('sticky-parent', 0o1777);
    const backend = filesBackend({ dir: join(stickyParent, 'a', 'b') });
    backends.push(backend);
    expect(await backend.tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })).toMatchObject({
      acquired: true,
    });
    expect(statSync(join(stickyParent, 'a', 'b')).mode & 0o777).toBe(0o700);

    // Renaming the locks away and planting another directory is exactly what the checks prevent;
    // a directory fixed after a refusal is accepted at the next call.
    const fixed = at('fixed-later', 0o777);
    const later = filesBackend({ dir: fixed });
    backends.push(later);
    await expect(later.tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })).rejects.toBeInstanceOf(
      LockDirectoryError,
    );
    chmodSync(fixed, 0o700);
    expect(await later.tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })).toMatchObject({
      acquired: true,
    });
  });

  it('shares a setgid directory with its group on purpose (shareWithGroup), across users', async () => {
    const base = temp.make();
    chmodSync(base, 0o755);
    const shared = join(base, 'shared');
    mkdirSync(shared);
    chownSync(shared, 0, NOGROUP);
    chmodSync(shared, 0o2770);
    const share = { dir: shared, shareWithGroup: true };
    // Without the opt-in, a directory others can write is refused, to root and to nobody alike.
    expect(await refusal(shared)).toMatchObject({ problem: 'writable-by-others' });
    const unshared = `
      const locks = createLocks({ backend: filesBackend({ dir: ${JSON.stringify(shared)} }) });
      return outcome(() => locks.tryAcquire('k'));
    `;
    expect(await runScript(unshared, { user: 'nobody' })).toMatchObject({
      problem: 'foreign-owner',
    });

    const root = createLocks({ backend: filesBackend(share), ttlMs: 60_000 });
    const writer = await root.acquire('doc');
    const nobodyTries = (call: string) => `
      const locks = createLocks({ backend: filesBackend(${JSON.stringify(share)}), ttlMs: 60_000 });
      const result = await outcome(() => ${call});
      return result;
    `;
    // Held by root: nobody, in the group, sees it and cannot take it.
    expect(
      await runScript(nobodyTries(`locks.acquire('doc', { waitMs: 0 })`), { user: 'nobody' }),
    ).toMatchObject({ ok: false, name: 'LockTimeoutError' });
    await writer.release();
    // Readers of both users share it (their state lives in a data file the group can read).
    const reader = await root.readWrite('doc').read();
    const nobodyReads = nobodyTries(
      `locks.readWrite('doc').read({ waitMs: 0 }).then(async (lease) => {
        const info = await locks.inspect('doc');
        if (info.holders.length !== 2) throw new Error('holders: ' + info.holders.length);
        return lease; })`,
    );
    const read = await runScript(nobodyReads, { user: 'nobody' });
    expect(read).toMatchObject({ ok: true });
    expect(BigInt((read as { fence: string }).fence)).toBeGreaterThan(reader.fence);
    await reader.release();
    // What nobody created is usable by root and the other way round.
    await root.forceRelease('doc');
    const again = await root.acquire('doc', { waitMs: 0 });
    await again.release();
    await root.close();
    // Everything created in it belongs to the group, which may change directories and read files.
    const entries = readdirSync(shared, { recursive: true }) as string[];
    expect(entries).toContain('.fence');
    for (const name of entries) {
      const stats = statSync(join(shared, name));
      expect(stats.gid, name).toBe(NOGROUP);
      expect(stats.mode & 0o070, name).toBe(stats.isDirectory() ? 0o070 : 0o040);
    }

    // Not setgid: refused even with the opt-in.
    const plain = join(base, 'plain');
    mkdirSync(plain);
    chownSync(plain, 0, NOGROUP);
    chmodSync(plain, 0o770);
    const backend = filesBackend({ dir: plain, shareWithGroup: true });
    backends.push(backend);
    await expect(backend.tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })).rejects.toMatchObject({
      problem: 'not-group-shared',
    });
  }, 60_000);
});

describe('files lock directory: paths that cannot be used', () => {
  /** Settles with the outcome of `call`, or "still pending" after `ms`. */
  async function within(ms: number, call: () => Promise<unknown>): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        call().then(
          () => 'resolved',
          (error: unknown) => error,
        ),
        new Promise((resolve) => (timer = setTimeout(() => resolve('still pending'), ms))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  it('fails at once with LockDirectoryError where mkdir -p would spin (/proc/nope)', async () => {
    const backend = filesBackend({ dir: '/proc/nope' });
    backends.push(backend);
    const tried = await within(2_000, () =>
      backend.tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 }),
    );
    expect(tried).toBeInstanceOf(LockDirectoryError);
    expect(tried).toMatchObject({ problem: 'unusable', cause: { code: 'ENOENT' } });
    // Through the manager: a configuration error, not a busy lock to wait for.
    const locks = createLocks({ backend, waitMs: 3_000 });
    const started = Date.now();
    expect(await within(2_000, () => locks.acquire('k'))).toBeInstanceOf(LockDirectoryError);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await within(2_000, () => locks.readWrite('k').read())).toBeInstanceOf(
      LockDirectoryError,
    );
  });

  it('names what cannot be created: a read-only place, a missing permission', async () => {
    expect(
      await filesBackend({ dir: '/proc/self/nope' })
        .tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })
        .catch((e: unknown) => e),
    ).toMatchObject({ problem: 'unusable' });
    // As nobody, under a directory only root may write to.
    const base = temp.make();
    chmodSync(base, 0o755);
    const denied = `
      const locks = createLocks({ backend: filesBackend({ dir: ${JSON.stringify(join(base, 'locks'))} }) });
      return outcome(() => locks.acquire('k', { waitMs: 5000 }));
    `;
    expect(await runScript(denied, { user: 'nobody' })).toMatchObject({
      ok: false,
      name: 'LockDirectoryError',
      problem: 'unusable',
    });
  });

  it('re-creates (and re-checks) a lock directory deleted while in use', async () => {
    const base = temp.make();
    const root = join(base, 'locks');
    const backend = filesBackend({ dir: root });
    backends.push(backend);
    expect(await backend.tryAcquire({ key: 'a', token: 't', ttlMs: 1_000 })).toMatchObject({
      acquired: true,
    });
    renameSync(root, join(base, 'moved'));
    expect(await backend.tryAcquire({ key: 'b', token: 't', ttlMs: 1_000 })).toMatchObject({
      acquired: true,
    });
    expect(statSync(root).mode & 0o777).toBe(0o700);
  });
});
