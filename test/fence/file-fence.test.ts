/** The file guard (`fileFence`) on the local filesystem, in-process and across processes. */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { fileFence } from '../../src/fence/index.js';
import { tempDir } from '../harness/process.js';
import { guardContract } from './guard-contract.js';

const run = promisify(execFile);
const dir = tempDir('distlock-file-fence-');
let counter = 0;
afterAll(() => dir.remove());

describe('fileFence', () => {
  guardContract(() => fileFence(join(dir.path, `resource-${(counter += 1)}`)));

  it('keeps one head and one value file, whatever the number of accesses', async () => {
    const guard = fileFence(join(dir.path, 'tidy'), { fsync: false });
    for (let fence = 1n; fence <= 20n; fence += 1n) {
      await guard.write(`v${fence}`, fence);
      await guard.read(fence);
    }
    const names = await readdir(guard.path);
    expect(names.filter((n) => /^\d/.test(n))).toEqual([
      '20.20.-.' + names.find((n) => n.startsWith('d.'))!.slice(2),
    ]);
    expect(names.filter((n) => n.startsWith('d.'))).toHaveLength(1);
    expect(guard.fencesSync()).toEqual({ fence: 20n, sharedFence: null });
  });

  it('processes racing on one resource: every write is accepted or refused, none lost', async () => {
    const path = join(dir.path, 'raced');
    // Each process appends its fence to a list under a read-modify-write, with fences interleaved.
    const script = `
      const { fileFence, StaleFenceError } = await import(${JSON.stringify(new URL('../../src/fence/index.ts', import.meta.url).pathname)});
      const guard = fileFence(process.argv[1], { fsync: false });
      const me = Number(process.argv[2]);
      const accepted = [];
      for (let round = 0; round < 15; round += 1) {
        const fence = BigInt(round * 3 + me);
        try {
          const list = JSON.parse((await guard.read(fence)) ?? '[]');
          await guard.write(JSON.stringify([...list, String(fence)]), fence);
          accepted.push(String(fence));
        } catch (error) {
          if (!(error instanceof StaleFenceError)) throw error;
        }
      }
      console.log(JSON.stringify(accepted));`;
    const outputs = await Promise.all(
      [1, 2, 3].map((me) =>
        run(process.execPath, [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          script,
          path,
          String(me),
        ]),
      ),
    );
    const accepted = outputs.flatMap((o) => JSON.parse(o.stdout) as string[]);
    const final = JSON.parse((await fileFence(path).read(1_000n)) ?? '[]') as string[];
    // Every accepted read-modify-write is in the final list, in increasing fence order.
    expect([...final].sort()).toEqual([...accepted].sort());
    expect(final.map(BigInt)).toEqual([...final.map(BigInt)].sort((a, b) => (a < b ? -1 : 1)));
  }, 60_000);
});
