/**
 * The takeover race across OS processes: several processes call `tryAcquire` on the same expired
 * locks at the same moment, with several calls in flight each. Exactly one call per lock may win
 * (the race proper-lockfile loses: both see "stale", both delete, both create).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { filesBackend } from '../../src/backends/files/index.js';
import { tempDir, waitUntil } from '../harness/process.js';

const dir = tempDir('distlock-files-processes-');
afterAll(() => dir.remove());

const PROCESSES = 4;
const ROUNDS = 150;
const CALLS_PER_ROUND = 3;

/** One contender: waits for the start signal, then races through every round's expired key. */
const workerSource = (locks: string, go: string) => `
  import { existsSync } from 'node:fs';
  import { filesBackend } from ${JSON.stringify(join(process.cwd(), 'src/backends/files/index.ts'))};
  const backend = filesBackend({ dir: ${JSON.stringify(locks)} });
  console.log('ready');
  while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 1));
  const wins = [];
  for (let round = 0; round < ${ROUNDS}; round += 1) {
    const key = 'expired-' + round;
    const calls = Array.from({ length: ${CALLS_PER_ROUND} }, (_, i) => {
      const token = process.pid + '-' + round + '-' + i;
      return backend
        .tryAcquire({ key, token, ttlMs: 600_000 })
        .then((result) => result.acquired && wins.push({ key, token, fence: String(result.fence) }));
    });
    await Promise.all(calls);
  }
  await backend.close();
  console.log(JSON.stringify(wins));
`;

it(`exactly one of ${PROCESSES} processes x ${CALLS_PER_ROUND} calls takes over each expired lock`, async () => {
  const locks = join(dir.path, 'locks');
  const go = join(dir.path, 'go');
  const parent = filesBackend({ dir: locks });
  const staleFences = new Map<string, bigint>();
  for (let round = 0; round < ROUNDS; round += 1) {
    const key = `expired-${round}`;
    const result = await parent.tryAcquire({ key, token: 'crashed-holder', ttlMs: 1 });
    if (!result.acquired) throw new Error(`could not set up ${key}`);
    staleFences.set(key, result.fence);
  }
  await waitUntil('every set-up lease to expire', async () => (await parent.list('')).length === 0);

  const children = Array.from({ length: PROCESSES }, () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', workerSource(locks, go)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { child, exited, output: () => ({ stdout, stderr }) };
  });
  try {
    await waitUntil(
      'every contender to be ready',
      () => children.every((c) => c.output().stdout.includes('ready')),
      60_000,
    );
    writeFileSync(go, '');
    const codes = await Promise.all(children.map((c) => c.exited));
    children.forEach((c, i) => expect(codes[i], c.output().stderr).toBe(0));
  } finally {
    for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL');
  }

  const wins = children.flatMap(
    (c) =>
      JSON.parse(c.output().stdout.split('\n').filter(Boolean).at(-1)!) as Array<{
        key: string;
        token: string;
        fence: string;
      }>,
  );
  const winnersByKey = new Map<string, typeof wins>();
  for (const win of wins) winnersByKey.set(win.key, [...(winnersByKey.get(win.key) ?? []), win]);
  for (const [key, staleFence] of staleFences) {
    const winners = winnersByKey.get(key) ?? [];
    expect(winners, key).toHaveLength(1);
    expect(BigInt(winners[0]!.fence)).toBeGreaterThan(staleFence);
    expect((await parent.inspect(key))?.token).toBe(winners[0]!.token);
  }
  // The processes really raced: more than one of them won some rounds.
  expect(new Set(wins.map((win) => win.token.split('-')[0])).size).toBeGreaterThan(1);
  await parent.close();
}, 120_000);
