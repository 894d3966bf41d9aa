/**
 * `distlock demo`: the double-payment demo from `examples/double-payment`, loaded only when asked
 * for: its TypeScript from a clone (run through tsx), its compiled JavaScript in the published
 * package (`dist/examples/double-payment`, built beside the library).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';
import { resolveBackendUrl } from './open-locks.js';

/** What the demo module exports (see `examples/double-payment/main.ts`). */
interface DemoModule {
  runDemo(options: Record<string, unknown>): Promise<{ exitCode?: unknown } | undefined>;
}

/** Options of {@link demoCommand}. */
export interface DemoCommandOptions {
  readonly backendUrl: string | undefined;
  readonly workers: number | undefined;
  readonly payments: number | undefined;
  readonly seed: number | undefined;
  readonly json: boolean;
}

/** The demo module, next to `src/` (tsx) or `dist/` (built). */
function demoModuleUrl(): URL | undefined {
  for (const candidate of ['main.ts', 'main.js']) {
    const url = new URL(`../../examples/double-payment/${candidate}`, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

/** Run the double-payment demo; resolves with the exit code (0 when no invariant broke). */
export async function demoCommand(options: DemoCommandOptions): Promise<number> {
  const url = demoModuleUrl();
  if (url === undefined) {
    // Only a damaged or hand-pruned installation lacks it: the package ships the compiled demo.
    throw new CliError(
      ExitCode.CONFIG,
      `the double-payment demo is missing from this installation (${fileURLToPath(
        new URL('../../examples/double-payment/', import.meta.url),
      )}); reinstall it: npm i distlock`,
    );
  }
  const demo = (await import(url.href)) as Partial<DemoModule>;
  if (typeof demo.runDemo !== 'function') {
    throw new CliError(ExitCode.INTERNAL, `${fileURLToPath(url)} does not export runDemo()`);
  }
  const backendUrl = resolveBackendUrl(options.backendUrl);
  const result = await demo.runDemo({
    ...(backendUrl === undefined ? {} : { backendUrl }),
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(options.payments === undefined ? {} : { payments: options.payments }),
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    output: options.json ? 'json' : 'pretty',
  });
  // The demo reports 1 when an invariant broke in a run that used the lock.
  return typeof result?.exitCode === 'number' ? result.exitCode : ExitCode.OK;
}
