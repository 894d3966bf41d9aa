/**
 * A contender process for the conformance suite's multi-process tests. It loads a backend module
 * and takes the lock `iterations` times. As a mutex contender it does, inside each holding, a
 * deliberately racy read-modify-write of a counter file; as a semaphore contender (a limit is set)
 * it holds a permit for a few milliseconds. Either way it records each holding's interval
 * (monotonic-clock ms, comparable across the host's processes) and fence.
 *
 * Configured by environment variables (set by the suite):
 * DISTLOCK_CONTENDER_MODULE, DISTLOCK_CONTENDER_KEY, DISTLOCK_CONTENDER_ITERATIONS,
 * DISTLOCK_CONTENDER_OUT (interval log), DISTLOCK_CONTENDER_COUNTER (counter file, mutex only),
 * DISTLOCK_CONTENDER_LIMIT (a semaphore's limit: the process takes permits, not the mutex).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createLocks } from '../core/locks.js';
import type { Lease } from '../core/lease.js';
import { env, loadBackendModule } from './process-module.js';

/**
 * Milliseconds on the monotonic clock, which every process of a host shares (CLOCK_MONOTONIC).
 * Not `performance.timeOrigin + performance.now()`: each process maps its own origin onto the wall
 * clock, and those mappings differ by up to a millisecond, enough to fake an overlap.
 */
const now = () => Number(process.hrtime.bigint()) / 1e6;

async function main(): Promise<void> {
  const backend = await (await loadBackendModule()).createBackend();
  const locks = createLocks({
    backend,
    // 10 s, or the store's shortest lease if longer (Azure's 15 s).
    ttlMs: Math.max(10_000, backend.capabilities.minTtlMs ?? 1),
    waitMs: 60_000,
  });
  const key = env('DISTLOCK_CONTENDER_KEY');
  const iterations = Number(env('DISTLOCK_CONTENDER_ITERATIONS'));
  const out = env('DISTLOCK_CONTENDER_OUT');
  const limit = process.env.DISTLOCK_CONTENDER_LIMIT;
  const semaphore = limit ? locks.semaphore(key, { limit: Number(limit) }) : undefined;
  try {
    for (let i = 0; i < iterations; i += 1) {
      const lease: Lease = semaphore ? await semaphore.acquire() : await locks.acquire(key);
      const start = now();
      if (semaphore) {
        await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 6));
      } else {
        const counter = env('DISTLOCK_CONTENDER_COUNTER');
        const value = Number(readFileSync(counter, 'utf8'));
        await new Promise((resolve) => setImmediate(resolve)); // widen the race window a little
        writeFileSync(counter, String(value + 1));
      }
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
