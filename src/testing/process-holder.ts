/**
 * A holder process for the conformance suite's crash test: it takes one lock with a short TTL,
 * prints `held <fence>` on stdout, and then does nothing until it is killed — a holder that
 * crashes without releasing. The suite measures when the store lets another client in.
 *
 * Configured by environment variables: DISTLOCK_CONTENDER_MODULE, DISTLOCK_CONTENDER_KEY,
 * DISTLOCK_HOLDER_TTL_MS.
 */
import { createLocks } from '../core/locks.js';
import { env, loadBackendModule } from './process-module.js';

async function main(): Promise<void> {
  const locks = createLocks({
    backend: await (await loadBackendModule()).createBackend(),
    waitMs: 30_000,
  });
  const lease = await locks.acquire(env('DISTLOCK_CONTENDER_KEY'), {
    ttlMs: Number(env('DISTLOCK_HOLDER_TTL_MS')),
  });
  process.stdout.write(`held ${lease.fence}\n`);
  // Keep the process alive (and the lease un-released) until the suite kills it.
  setInterval(() => undefined, 60_000);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
