/**
 * The `distlock` command next to the lock tools people know (`flock`, `etcdctl lock`,
 * `consul lock`): bare durations in seconds, `-c` shell strings, the command's own options without
 * `--`, `-E/--conflict-exit-code`, holding a lock without a command, a missing client library as a
 * configuration error, and a backend that cannot be used reported by its root cause.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { tempDir, waitUntil } from '../harness/process.js';
import { cli, cliAll, startCli, type CliProcess, type CliResult } from './cli-process.js';

const HIDE_PACKAGES = fileURLToPath(new URL('../fixtures/hide-packages.mjs', import.meta.url));

function stderrLines(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line !== '');
}

describe('distlock next to flock, etcdctl lock and consul lock', { timeout: 60_000 }, () => {
  const dir = tempDir('distlock-cli-conventions-');
  const env = { DISTLOCK_URL: `file://${dir.path}` };
  afterAll(() => dir.remove());

  /** `distlock run KEY` without a command, once it says it holds the lock. */
  async function hold(key: string): Promise<CliProcess & { stdout: () => string }> {
    const holder = startCli(['run', key], env);
    let stdout = '';
    holder.child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await waitUntil(`"${key}" to be held`, () => stdout.includes('holding'), 20_000);
    return { ...holder, stdout: () => stdout };
  }

  describe('while a key is held', () => {
    let holder: Awaited<ReturnType<typeof hold>>;
    beforeAll(async () => {
      holder = await hold('held');
    });
    afterAll(async () => {
      holder.child.kill('SIGINT');
      await holder.done;
    });

    it('reads a bare duration as seconds', async () => {
      const result = await cli(['run', '--wait', '1', 'held', 'true'], env);
      expect(result.code, result.stderr).toBe(ExitCode.NOT_ACQUIRED);
      expect(result.stderr).toMatch(/was not acquired within 1\.0s/);
      // It really waited about a second (not 1 ms); the upper bound is only generous.
      expect(result.durationMs).toBeGreaterThanOrEqual(1_000);
    });

    it('exits with --conflict-exit-code (-E) when the lock is held or not acquired in time', async () => {
      const [noWait, longForm, timedOut, tooBig] = await cliAll([
        { args: ['run', '--no-wait', '-E', '0', 'held', 'true'], env },
        { args: ['run', '--no-wait', '--conflict-exit-code', '3', 'held', 'true'], env },
        { args: ['run', '--wait', '500ms', '-E', '9', 'held', 'true'], env },
        { args: ['run', '--no-wait', '-E', '256', 'held', 'true'], env },
      ]);
      expect(noWait!.code, noWait!.stderr).toBe(0);
      expect(noWait!.stderr).toMatch(/is held by token .*not waiting \(--no-wait\)/);
      expect(longForm!.code).toBe(3);
      expect(timedOut!.code).toBe(9);
      expect(tooBig!.code).toBe(ExitCode.USAGE);
      expect(tooBig!.stderr).toMatch(/--conflict-exit-code: 256 is not an exit code/);
    });

    it('shows the holder of a lock held without a command', async () => {
      expect(holder.stdout()).toMatch(/^holding "held" \(fence \d+\); SIGINT \(Ctrl-C\)/);
      const status = await cli(['status', 'held', '--json'], env);
      expect(JSON.parse(status.stdout)).toMatchObject({ key: 'held', held: true });
    });
  });

  it('holds a lock without a command until SIGINT, and reports it lost when broken', async () => {
    const released = await hold('hold-int');
    const broken = await hold('hold-broken');
    released.child.kill('SIGINT');
    const forced = await cli(['release', 'hold-broken', '--force', '--yes'], env);
    expect(forced.code, forced.stderr).toBe(0);
    const [releasedEnd, brokenEnd] = await Promise.all([released.done, broken.done]);
    expect(releasedEnd.code, releasedEnd.stderr).toBe(0);
    expect(brokenEnd.code, brokenEnd.stderr).toBe(ExitCode.LOCK_LOST);
    expect(stderrLines(brokenEnd)).toEqual([
      'distlock: lock "hold-broken" was lost (released or taken by someone else)',
    ]);
    const status = await cli(['status', 'hold-int', '--json'], env);
    expect(JSON.parse(status.stdout)).toEqual({ key: 'hold-int', held: false });
  });

  it('runs a shell string with -c, and the command’s own options without --', async () => {
    const [shell, both, ownOptions, inline, unknown] = await cliAll([
      { args: ['run', 'c-1', '-c', 'echo one; echo two'], env },
      { args: ['run', 'c-2', '-c', 'true', 'ls'], env },
      // --ttl before the command's name is distlock's; after it, printf's.
      { args: ['run', 'c-3', '--ttl', '5', 'printf', '%s|', '-a', '--ttl', '9'], env },
      { args: ['run', '-v', '--ttl=5', 'c-4', 'printf', '%s|', '-v'], env },
      { args: ['run', 'c-5', '--bogus', 'printf', 'x'], env },
    ]);
    expect(shell!.code, shell!.stderr).toBe(0);
    expect(shell!.stdout).toBe('one\ntwo\n');
    expect(both!.code).toBe(ExitCode.USAGE);
    expect(both!.stderr).toMatch(/-c runs a shell script; a command was given too \(ls\)/);
    expect(ownOptions!.code, ownOptions!.stderr).toBe(0);
    expect(ownOptions!.stdout).toBe('-a|--ttl|9|');
    expect(inline!.code, inline!.stderr).toBe(0);
    expect(inline!.stdout).toBe('-v|');
    expect(inline!.stderr).toMatch(/acquired "c-4"/); // the first -v was distlock's
    expect(unknown!.code).toBe(ExitCode.USAGE);
    expect(stderrLines(unknown!)).toEqual([
      "distlock: unknown option '--bogus'; if it is the command's, put it after the command's " +
        "name, or put -- before the command (see 'distlock run --help')",
    ]);
  });

  it('says which package to install when a client library is missing (exit 78)', async () => {
    const hidden = {
      ...env,
      NODE_OPTIONS: `--import=${HIDE_PACKAGES}`,
      DISTLOCK_TEST_HIDE_PACKAGES: 'ioredis,etcd3',
    };
    const [redis, etcd] = await cliAll([
      { args: ['status', 'k', '--backend', 'redis://127.0.0.1:1'], env: hidden },
      { args: ['run', 'k', 'true'], env: { ...hidden, DISTLOCK_URL: 'etcd://127.0.0.1:1' } },
    ]);
    expect(redis!.code, redis!.stderr).toBe(ExitCode.CONFIG);
    expect(stderrLines(redis!)).toEqual([
      'distlock: status: redis:// URLs need the "ioredis" package, which is not installed: ' +
        'npm i ioredis',
    ]);
    expect(etcd!.code, etcd!.stderr).toBe(ExitCode.CONFIG);
    expect(stderrLines(etcd!)).toEqual([
      'distlock: run: etcd:// URLs need the "etcd3" package, which is not installed: npm i etcd3',
    ]);
  });

  it('names the command and the root cause when the backend cannot be used', async () => {
    const notADir = join(dir.path, 'a-file');
    writeFileSync(notADir, '');
    const [redis, redisRun, etcd, files] = await cliAll([
      { args: ['status', 'k', '--backend', 'redis://127.0.0.1:1'] },
      { args: ['run', '--wait', '2', '-b', 'redis://app:s3cret@127.0.0.1:1', 'k', 'true'] },
      { args: ['list', '--backend', 'etcd://127.0.0.1:1'] },
      { args: ['status', 'k', '--backend', `file://${notADir}/locks`] },
    ]);
    for (const result of [redis!, redisRun!, etcd!, files!]) {
      expect(result.code, result.stderr).toBe(ExitCode.UNAVAILABLE);
      expect(stderrLines(result)).toHaveLength(1);
      // Never the client library's wording, nor the internal step that failed.
      expect(result.stderr).not.toMatch(/max retries|circuit|inspect|s3cret/i);
    }
    // The root cause shows where the client library reports it (the files backend's system
    // error, and the network clients' once their errors carry it as `cause`).
    expect(redis!.stderr).toMatch(
      /^distlock: status: cannot reach the backend redis:\/\/127\.0\.0\.1:1(: connect ECONNREFUSED 127\.0\.0\.1:1)?\n$/,
    );
    expect(redisRun!.stderr).toMatch(
      /^distlock: run: cannot reach the backend redis:\/\/app:\*\*\*@127\.0\.0\.1:1(: connect ECONNREFUSED 127\.0\.0\.1:1)?\n$/,
    );
    expect(etcd!.stderr).toMatch(
      /^distlock: list: cannot reach the backend etcd:\/\/127\.0\.0\.1:1/,
    );
    expect(files!.stderr).toMatch(
      /^distlock: status: the backend file:\/\/.*\/a-file\/locks failed: ENOTDIR: not a directory/,
    );
  });
});
