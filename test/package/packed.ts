/**
 * The package as `npm pack` makes it (with its `prepack` build), for the tests that install or
 * unpack it. Packing rebuilds dist/ in place, so test files running at once take turns on a file
 * lock, and a tarball is reused while its inputs are unchanged (keyed by their contents).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runToEnd, withFileLock } from '../harness/process.js';

/** The repository's root directory. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Scratch space inside the repository (git-ignored), for projects that resolve its node_modules. */
export const SCRATCH = join(ROOT, '.tmp');

/** Everything that goes into the tarball or decides how it is built. */
const INPUTS = [
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'README.md',
  'LICENSE',
  'docs',
  'types',
  'src',
  'examples',
];

function filesUnder(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => filesUnder(join(path, name)));
}

function inputsHash(): string {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap((input) => filesUnder(join(ROOT, input)))) {
    hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The path of the packed tarball (`distlock-<version>.tgz`), packing it if the sources changed
 * since the last time.
 */
export async function packedTarball(): Promise<string> {
  const cache = join(SCRATCH, 'pack');
  mkdirSync(cache, { recursive: true });
  return withFileLock(join(cache, '.lock'), 300, async () => {
    const dir = join(cache, inputsHash());
    const existing = existsSync(dir) ? readdirSync(dir).find((name) => name.endsWith('.tgz')) : '';
    if (existing) return join(dir, existing);
    // Older tarballs are stale: their sources changed.
    for (const name of readdirSync(cache)) {
      if (name !== '.lock') rmSync(join(cache, name), { recursive: true, force: true });
    }
    mkdirSync(dir);
    const { stdout } = await runToEnd('npm', ['pack', '--silent', '--pack-destination', dir], {
      cwd: ROOT,
      timeoutMs: 120_000,
    });
    return join(dir, stdout.trim().split('\n').at(-1) ?? '');
  });
}
