/**
 * The suite's child processes (workers, the memory lock server) and the backend modules they load
 * run as JavaScript bundled once per suite process by esbuild, not through `tsx`: a worker then
 * starts on about a third of the CPU time (0.5 s instead of 1.4 s here), which matters on a small
 * machine where a run starts a dozen of them while others run their tests. Packages stay external
 * (resolved from `node_modules` as usual); bundles go to `node_modules/.cache/distlock-faults`.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const OUT_DIR = fileURLToPath(
  new URL('../../node_modules/.cache/distlock-faults/', import.meta.url),
);
const compiled = new Map<string, Promise<string>>();

/** The path of `entry` (a `.ts` module) bundled as an ES module; built once per process. */
export function compile(entry: string): Promise<string> {
  let output = compiled.get(entry);
  if (!output) {
    output = bundle(entry);
    compiled.set(entry, output);
  }
  return output;
}

async function bundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    write: false,
    logLevel: 'error',
  });
  const code = result.outputFiles[0]!.contents;
  const name = createHash('sha1').update(entry).update(code).digest('hex').slice(0, 16);
  const path = join(OUT_DIR, `${name}.mjs`);
  await mkdir(OUT_DIR, { recursive: true });
  // Write and rename: another suite process may be writing the same bundle.
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, code);
  await rename(temporary, path);
  return path;
}
