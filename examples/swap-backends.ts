/**
 * The same caller code on any backend. `countUnderLock` only sees the `LockManager` that
 * `createLocks` returns; which store holds the locks is decided once, where the manager is made.
 *
 * ```sh
 * npx tsx examples/swap-backends.ts                          # memory and files
 * npx tsx examples/swap-backends.ts redis://127.0.0.1:6379   # … and any backend URL
 * ```
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { createLocks, type LockBackend, type LockManager } from '../src/index.js';
import { openBackend, redactUrl } from '../src/backend-url.js';
import { filesBackend } from '../src/backends/files/index.js';
import { memoryBackend } from '../src/backends/memory/index.js';

/** What {@link countUnderLock} observed. */
export interface CountResult {
  /** The counter at the end: equal to the number of increments when none was lost. */
  readonly count: number;
  /** The fence of each holder, in the order they held the lock. */
  readonly fences: readonly bigint[];
}

/**
 * Caller code: `increments` concurrent read → pause → write increments of one counter, each under
 * the lock `counter`. Without the lock most increments would be lost.
 *
 * @example
 * ```ts
 * const { count } = await countUnderLock(createLocks({ backend: memoryBackend() }), 20); // 20
 * ```
 */
export async function countUnderLock(locks: LockManager, increments = 20): Promise<CountResult> {
  let counter = 0;
  const fences: bigint[] = [];
  await Promise.all(
    Array.from({ length: increments }, () =>
      locks.withLock('counter', async (lease) => {
        const read = counter;
        await sleep(1); // another caller would read the same value here, were it not locked
        counter = read + 1;
        fences.push(lease.fence);
      }),
    ),
  );
  return { count: counter, fences };
}

async function main(urls: readonly string[]): Promise<void> {
  const lockDir = await mkdtemp(join(tmpdir(), 'distlock-swap-'));
  const backends: [string, () => Promise<LockBackend> | LockBackend][] = [
    ['memory', () => memoryBackend()],
    [`files (${lockDir})`, () => filesBackend({ dir: lockDir })],
    ...urls.map((url): [string, () => Promise<LockBackend>] => [
      redactUrl(url),
      () => openBackend(url),
    ]),
  ];
  try {
    for (const [name, open] of backends) {
      const locks = createLocks({ backend: await open(), ttlMs: 5_000 });
      try {
        const { count, fences } = await countUnderLock(locks);
        const increasing = fences.every((fence, i) => i === 0 || fence > (fences[i - 1] ?? fence));
        console.log(
          `${name}: ${count}/20 increments kept, fences ${fences[0]}…${fences.at(-1)} ` +
            (increasing ? 'strictly increasing' : 'NOT increasing'),
        );
      } finally {
        await locks.close();
      }
    }
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href
) {
  await main(process.argv.slice(2));
}
