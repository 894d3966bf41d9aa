/**
 * A contender process for the conformance suite's multi-process test. It loads a backend module,
 * takes the lock `iterations` times, and inside each holding does a deliberately racy
 * read-modify-write of a counter file and records its interval (high-resolution epoch ms).
 *
 * Configured by environment variables (set by the suite):
 * DISTLOCK_CONTENDER_MODULE, DISTLOCK_CONTENDER_KEY, DISTLOCK_CONTENDER_ITERATIONS,
 * DISTLOCK_CONTENDER_OUT (interval log), DISTLOCK_CONTENDER_COUNTER (counter file).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createLocks } from '../core/locks.js';
import type { LockBackend } from '../core/backend.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const now = () => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const module = (await import(pathToFileURL(env('DISTLOCK_CONTENDER_MODULE')).href)) as {
    createBackend: () => LockBackend | Promise<LockBackend>;
  };
  const locks = createLocks({
    backend: await module.createBackend(),
    ttlMs: 10_000,
    waitMs: 60_000,
  });
  const key = env('DISTLOCK_CONTENDER_KEY');
  const iterations = Number(env('DISTLOCK_CONTENDER_ITERATIONS'));
  const out = env('DISTLOCK_CONTENDER_OUT');
  const counter = env('DISTLOCK_CONTENDER_COUNTER');
  try {
    for (let i = 0; i < iterations; i += 1) {
      const lease = await locks.acquire(key);
      const start = now();
      const value = Number(readFileSync(counter, 'utf8'));
      await new Promise((resolve) => setImmediate(resolve)); // widen the race window a little
      writeFileSync(counter, String(value + 1));
      const end = now();
      appendFileSync(
        out,
        `${JSON.stringify({ pid: process.pid, fence: String(lease.fence), start, end })}\n`,
      );
      await lease.release();
    }
  } finally {
    await locks.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
