/**
 * The conformance suite every backend runs: the same behaviour tests for all, so that application
 * code never changes when the store does. Third-party backends can run it too:
 *
 * @example
 * ```ts
 * // test/my-backend.test.ts (vitest)
 * import { runConformanceSuite } from 'distlock/testing';
 * runConformanceSuite({ name: 'my-store', createBackend: () => myBackend({ url }) });
 * ```
 */
import { afterAll, describe } from 'vitest';
import { kindsTests } from './conformance-kinds.js';
import { mutexTests } from './conformance-mutex.js';
import { robustnessTests } from './conformance-robustness.js';
import { suiteContext, type ConformanceOptions } from './suite-context.js';

export type { ConformanceOptions } from './suite-context.js';

/** Register the conformance suite for one backend (vitest `describe` blocks). */
export function runConformanceSuite(options: ConformanceOptions): void {
  const context = suiteContext(options);

  afterAll(async () => {
    await Promise.allSettled(context.managers.map((m) => m.close()));
  });

  (options.concurrent ? describe.concurrent : describe)(`conformance: ${options.name}`, () => {
    mutexTests(context);
    kindsTests(context);
    robustnessTests(context);
  });
}
