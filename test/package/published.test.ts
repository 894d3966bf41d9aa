/**
 * The package as a user gets it: `npm pack` (which builds), then `npm install` of the tarball into
 * a scratch project outside the repository, so that nothing resolves from the repository's own
 * node_modules. Checks the tarball's contents and source maps, imports every subpath export (ESM,
 * and `require()` for CommonJS consumers), runs the installed CLI (help, demo, a missing optional
 * client library), and compiles tiny TypeScript consumers with `nodenext` and `node10` resolution.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { runToEnd, tempDir } from '../harness/process.js';
import { packedTarball, ROOT } from './packed.js';

const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

interface PackageJson {
  readonly version: string;
  readonly license: string;
  readonly exports: Record<string, string | { types: string; default: string }>;
  readonly typesVersions: Record<string, Record<string, string[]>>;
  readonly bin: Record<string, string>;
  readonly dependencies: Record<string, string>;
  readonly engines: { node: string };
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
/** `distlock`, `distlock/files`, …: every subpath the package exports, but package.json. */
const SUBPATHS = Object.keys(pkg.exports)
  .filter((subpath) => subpath !== './package.json')
  .map((subpath) => `distlock${subpath.slice(1)}`);

/** Run a command; resolves with its exit code and output, whatever the exit code. */
function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      command,
      args,
      { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 60_000 },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

describe('the published package', { timeout: 120_000 }, () => {
  const consumer = tempDir('distlock-consumer-');
  let tarball = '';
  let files: string[] = [];
  const installed = join(consumer.path, 'node_modules', 'distlock');
  const distlock = (args: readonly string[]) =>
    run(join(consumer.path, 'node_modules', '.bin', 'distlock'), args, { cwd: consumer.path });

  beforeAll(async () => {
    tarball = await packedTarball();
    const { stdout } = await runToEnd('tar', ['-tzf', tarball], { timeoutMs: 30_000 });
    files = stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.replace(/^package\//, ''));
    writeFileSync(
      join(consumer.path, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    await runToEnd('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
      cwd: consumer.path,
      timeoutMs: 120_000,
    });
  }, 240_000);
  afterAll(() => consumer.remove());

  it('ships the build, the license, the docs and no TypeScript sources', () => {
    const targets = Object.values(pkg.exports).flatMap((target) =>
      typeof target === 'string' ? [target] : [target.types, target.default],
    );
    for (const target of [...targets, ...Object.values(pkg.bin)]) {
      expect(files, target).toContain(target.replace(/^\.\//, ''));
    }
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'docs/cli.md']));
    expect(files.filter((file) => /\.ts$/.test(file) && !file.endsWith('.d.ts'))).toEqual([]);
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) \d{4} distlock contributors\n/,
    );
    expect(pkg.license).toBe('MIT');
    // The demo's progress bar is not a runtime dependency: only what the library imports is —
    // the CLI's argument parser, the Redis backend's slot hashing and the etcd backend's fault
    // policies (dependencies of ioredis and etcd3 themselves).
    expect(Object.keys(pkg.dependencies)).toEqual(['cluster-key-slot', 'cockatiel', 'commander']);
    expect(pkg.engines.node).toBe('>=20');
  });

  it('carries its sources inside every source map', () => {
    const maps = files.filter((file) => file.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(
        readFileSync(join(installed, map), 'utf8'),
      ) as { sources: string[]; sourcesContent?: Array<string | null> };
      expect(sourcesContent?.length, map).toBe(sources.length);
      for (const content of sourcesContent ?? []) expect(content, map).toMatch(/\S/);
    }
  });

  it('runs the CLI: help, version, and the demo without any dev dependency', async () => {
    const [help, version, demo] = await Promise.all([
      distlock(['--help']),
      distlock(['--version']),
      distlock(['demo', '--workers', '2', '--payments', '4', '--json']),
    ]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: distlock/);
    expect(help.stdout).toMatch(/Exit codes:/);
    expect(version.stdout.trim()).toBe(pkg.version);
    expect(demo.code, demo.stderr).toBe(0);
    expect(JSON.parse(demo.stdout)).toMatchObject({ ok: true, workers: 2, payments: 4 });
  });

  it('says which package to install when an optional client library is missing', async () => {
    const [redis, etcd, azure] = await Promise.all([
      distlock(['status', 'k', '--backend', 'redis://127.0.0.1:1']),
      distlock(['list', '--backend', 'etcd://127.0.0.1:1']),
      distlock(['list', '--backend', 'https://acct.blob.core.windows.net/locks?sv=1&sig=secret']),
    ]);
    expect(azure.code, azure.stderr).toBe(ExitCode.CONFIG);
    expect(azure.stderr).toBe(
      'distlock: list: https:// URLs need the "@azure/storage-blob" package, which is not ' +
        'installed: npm i @azure/storage-blob\n',
    );
    expect(redis.code, redis.stderr).toBe(ExitCode.CONFIG);
    expect(redis.stderr).toBe(
      'distlock: status: redis:// URLs need the "ioredis" package, which is not installed: ' +
        'npm i ioredis\n',
    );
    expect(etcd.code, etcd.stderr).toBe(ExitCode.CONFIG);
    expect(etcd.stderr).toBe(
      'distlock: list: etcd:// URLs need the "etcd3" package, which is not installed: npm i etcd3\n',
    );
  });

  describe('with the optional client libraries and vitest installed', () => {
    beforeAll(() => {
      // The repository's copies, linked: they resolve their own dependencies from there.
      mkdirSync(join(consumer.path, 'node_modules', '@azure'), { recursive: true });
      for (const name of ['ioredis', 'etcd3', 'pg', '@azure/storage-blob', 'vitest']) {
        symlinkSync(join(ROOT, 'node_modules', name), join(consumer.path, 'node_modules', name));
      }
    });

    it('imports every subpath export, and require() works for CommonJS consumers', async () => {
      const script = `
        const names = ${JSON.stringify(SUBPATHS)};
        const loaded = {};
        for (const name of names) loaded[name] = Object.keys(await import(name)).length;
        console.log(JSON.stringify(loaded));`;
      const esm = await run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: consumer.path,
      });
      expect(esm.code, esm.stderr).toBe(0);
      const counts = JSON.parse(esm.stdout) as Record<string, number>;
      expect(Object.keys(counts)).toEqual(SUBPATHS);
      for (const [name, count] of Object.entries(counts)) expect(count, name).toBeGreaterThan(0);

      // require(esm): Node 20.19+ (this machine runs 20.20). distlock/testing needs vitest, which
      // is itself ESM with top-level await, so CommonJS cannot load it.
      const cjs = await run(
        process.execPath,
        [
          '-e',
          `for (const name of ${JSON.stringify(SUBPATHS.filter((name) => name !== 'distlock/testing'))}) require(name);
           console.log(typeof require('distlock').createLocks);`,
        ],
        { cwd: consumer.path },
      );
      expect(cjs.code, cjs.stderr).toBe(0);
      expect(cjs.stdout.trim()).toBe('function');
    });

    it('type-checks a consumer under strict nodenext', async () => {
      const dir = join(consumer.path, 'nodenext');
      mkdirSync(dir);
      writeFileSync(
        join(dir, 'main.ts'),
        `import { createLocks, type Lease } from 'distlock';
         import { filesBackend } from 'distlock/files';
         import { memoryBackend, MemoryStore } from 'distlock/memory';
         import { redisBackend } from 'distlock/redis';
         import { etcdBackend } from 'distlock/etcd';
         import { runConformanceSuite } from 'distlock/testing';
         const locks = createLocks({ backend: filesBackend({ dir: '/tmp/x' }) });
         const lease: Lease | null = await locks.tryAcquire('k');
         const fence: bigint | undefined = lease?.fence;
         export { fence, memoryBackend, MemoryStore, redisBackend, etcdBackend, runConformanceSuite };`,
      );
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: [],
          },
          files: ['main.ts'],
        }),
      );
      const result = await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
      expect(result.code, result.stdout).toBe(0);
    });
  });

  it('tells a TypeScript consumer with moduleResolution node10 what to change', async () => {
    const dir = join(consumer.path, 'node10');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'main.ts'),
      `import { createLocks } from 'distlock';\nimport { filesBackend } from 'distlock/files';\n` +
        `createLocks({ backend: filesBackend() });\n`,
    );
    const compilerOptions = {
      module: 'commonjs',
      moduleResolution: 'node10',
      strict: true,
      noEmit: true,
      types: [],
    };
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions, files: ['main.ts'] }),
    );
    const ts5 = await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
    // TypeScript 5 explains it by itself, for the root and for every subpath.
    expect(ts5.code).not.toBe(0);
    for (const name of ["'distlock'", "'distlock/files'"]) {
      expect(ts5.stdout).toMatch(
        new RegExp(
          `Cannot find module ${name}[^\\n]*\\n\\s+There are types at [^\\n]*but this result could not be resolved under your current 'moduleResolution' setting. Consider updating to 'node16', 'nodenext', or 'bundler'`,
        ),
      );
    }

    // TypeScript 4 (which reads typesVersions "<5.0") is sent to types/esm-only.d.ts for every
    // import. Compiling against that file, as TypeScript 4 would, prints the reason.
    expect(pkg.typesVersions).toEqual({ '<5.0': { '*': ['types/esm-only.d.ts'] } });
    expect(files).toContain('types/esm-only.d.ts');
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...compilerOptions,
          paths: {
            distlock: ['../node_modules/distlock/types/esm-only.d.ts'],
            'distlock/*': ['../node_modules/distlock/types/esm-only.d.ts'],
          },
        },
        files: ['main.ts'],
      }),
    );
    const ts4 = await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
    expect(ts4.stdout).toContain(
      "Type 'distlock_is_ESM_only_set_moduleResolution_to_node16_or_nodenext' does not satisfy",
    );
  });
});
