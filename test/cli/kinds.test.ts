/**
 * `distlock run KEY --shared` (a read share, flock -s) and `--limit N` (one of N permits), against
 * the files backend: shared holders run together, a plain `run` waits for all of them, a limit is
 * never exceeded, and bad or conflicting kinds exit 64 with a message.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../harness/process.js';
import { cli, cliAll, readLines, startCli } from './cli-process.js';

const dir = tempDir('distlock-cli-kinds-');
const env = { DISTLOCK_URL: `file://${dir.path}` };
afterAll(() => dir.remove());

/** A shell script that logs its start and end (monotonic ns) to `log`, sleeping `seconds` between. */
function section(log: string, label: string, seconds: number): string[] {
  return [
    '-c',
    `echo "${label} start $(date +%s%N)" >> ${log}; sleep ${seconds}; echo "${label} end $(date +%s%N)" >> ${log}`,
  ];
}

/** The most sections of the log that were inside at once. */
function mostInside(log: string): number {
  let inside = 0;
  let most = 0;
  const events = readLines(log)
    .map((line) => line.split(' '))
    .map(([, what, at]) => ({ delta: what === 'start' ? 1 : -1, at: BigInt(at!) }))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.delta - b.delta));
  for (const event of events) {
    inside += event.delta;
    most = Math.max(most, inside);
  }
  return most;
}

describe('distlock run --shared and --limit', { timeout: 90_000 }, () => {
  it('--shared holders hold the key together; a plain run of the key waits for them', async () => {
    const readers = [
      startCli(['run', '--shared', 'doc'], env),
      startCli(['run', '-s', 'doc'], env),
    ];
    await Promise.all(
      readers.map(
        (reader) =>
          new Promise<void>((resolve) => reader.child.stdout!.once('data', () => resolve())),
      ),
    );
    const status = await cli(['status', 'doc', '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ mode: 'shared', limit: null });
    expect(JSON.parse(status.stdout).holders).toHaveLength(2);
    const refused = await cli(['run', '--no-wait', 'doc', 'true'], env);
    expect(refused.code, refused.stderr).toBe(75);
    expect(refused.stderr).toMatch(/held by 2 shared holders/);
    const writer = startCli(['run', '--wait', '30s', 'doc', '-c', 'echo wrote'], env);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const reader of readers) reader.child.kill('SIGTERM');
    for (const reader of readers) expect((await reader.done).code).toBe(0);
    const wrote = await writer.done;
    expect(wrote.code, wrote.stderr).toBe(0);
    expect(wrote.stdout).toBe('wrote\n');
  });

  it('--limit N never lets more than N commands hold the key', async () => {
    const log = `${dir.path}/limit.log`;
    const results = await cliAll(
      [0, 1, 2, 3, 4].map((i) => ({
        args: ['run', '--limit', '2', '--wait', '60s', 'exports', ...section(log, `p${i}`, 0.6)],
        env,
      })),
      5,
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    expect(mostInside(log)).toBeLessThanOrEqual(2);
    expect(readLines(log)).toHaveLength(10);
  });

  it('refuses a second limit on a held key, bad limits, and --shared with --limit (exit 64)', async () => {
    const held = startCli(['run', '--limit', '2', 'jobs'], env);
    await new Promise<void>((resolve) => held.child.stdout!.once('data', () => resolve()));
    const [mismatch, zero, both] = await cliAll([
      { args: ['run', '--limit', '3', '--no-wait', 'jobs', 'true'], env },
      { args: ['run', '--limit', '0', 'jobs', 'true'], env },
      { args: ['run', '--shared', '--limit', '2', 'jobs', 'true'], env },
    ]);
    held.child.kill('SIGTERM');
    expect((await held.done).code).toBe(0);
    expect(mismatch!.code, mismatch!.stderr).toBe(64);
    expect(mismatch!.stderr).toMatch(/shared with limit 2; this call asked for limit 3/);
    expect(zero!.code).toBe(64);
    expect(zero!.stderr).toMatch(/--limit/);
    expect(both!.code).toBe(64);
    expect(both!.stderr).toMatch(/--shared and --limit/);
  });
});
