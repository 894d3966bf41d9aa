/**
 * `distlock demo`: the double-payment demo from `examples/double-payment`, loaded only when asked
 * for. It ships with the source repository, not with the published package.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';
import { resolveBackendUrl } from './open-locks.js';

/** What the demo module exports. */
interface DemoModule {
  runDemo(options: Record<string, unknown>): Promise<unknown>;
}

/** The demo module, next to `src/` (tsx) or `dist/` (built). */
function demoModuleUrl(): URL | undefined {
  for (const candidate of ['main.ts', 'main.js']) {
    const url = new URL(`../../examples/double-payment/${candidate}`, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

/** Run the double-payment demo; resolves with the exit code. */
export async function demoCommand(options: { backendUrl: string | undefined }): Promise<number> {
  const url = demoModuleUrl();
  if (url === undefined) {
    throw new CliError(
      ExitCode.USAGE,
      'the double-payment demo is not part of this installation; run it from a clone of the ' +
        'distlock repository with: npm run demo',
    );
  }
  const demo = (await import(url.href)) as Partial<DemoModule>;
  if (typeof demo.runDemo !== 'function') {
    throw new CliError(ExitCode.INTERNAL, `${fileURLToPath(url)} does not export runDemo()`);
  }
  const backendUrl = resolveBackendUrl(options.backendUrl);
  const outcome = await demo.runDemo(backendUrl === undefined ? {} : { backendUrl });
  // The demo may report its own exit code (e.g. 1 when an invariant was violated).
  if (typeof outcome === 'number') return outcome;
  const exitCode = (outcome as { exitCode?: unknown } | null)?.exitCode;
  return typeof exitCode === 'number' ? exitCode : ExitCode.OK;
}
