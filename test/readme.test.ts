/**
 * Every ```ts block of README.md, compiled against the package as published (the packed tarball,
 * unpacked into a scratch project) with the settings the README recommends — strict, `nodenext`,
 * target ES2022 — and run with Node unless its annotation says otherwise.
 *
 * ## Annotating a block
 *
 * Put an HTML comment on the line before the opening fence (blank lines between are allowed);
 * GitHub does not show it. Without one, a block runs, on the files backend, with nothing else.
 *
 * - `<!-- readme: run -->`: compile, then run with `node`; it must exit 0 within 30 s (close what
 *   you open). Its temp dir is private, so `filesBackend()` without a `dir` is isolated.
 * - `<!-- readme: run redis etcd -->`: also start those servers first and pass their URLs in
 *   the environment: `REDIS_URL` (redis://127.0.0.1:port), `ETCD_URL` (etcd://127.0.0.1:port).
 *   Write the block to read them, with the usual address as the fallback:
 *   `process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'`. A new server: add it to `SERVERS` below.
 * - `<!-- readme: compile-only -->`: compile, do not run: for blocks that use the reader's own
 *   code, or that run under another tool (vitest). Relative imports (`import { db } from
 *   './your-app.js'`) stand for the reader's code: each imported name is declared `any`.
 * - `<!-- readme: skip REASON -->`: neither compiled nor run; the reason is required.
 *
 * Text in parentheses at the end is a comment for the reader of the README source:
 * `<!-- readme: compile-only (db stands for your database) -->`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd } from './harness/etcd.js';
import { runToEnd, tempDir } from './harness/process.js';
import { startRedis } from './harness/redis.js';
import { packedTarball, ROOT, SCRATCH } from './package/packed.js';

/** Servers a `run` block can ask for: the variable that gets its URL, and how to start one. */
const SERVERS: Readonly<
  Record<string, { env: string; start: () => Promise<{ url: string; stop(): Promise<void> }> }>
> = {
  redis: { env: 'REDIS_URL', start: startRedis },
  etcd: { env: 'ETCD_URL', start: () => startEtcd(1) },
};

type Mode = { kind: 'run'; servers: string[] } | { kind: 'compile-only' } | { kind: 'skip' };

interface Block {
  /** README line of the opening fence (1-based). */
  readonly line: number;
  readonly code: string;
  readonly mode: Mode;
  /** Directory of the block in the scratch project, e.g. `line-63`. */
  readonly dir: string;
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const ANNOTATION = /^<!--\s*readme:\s*(.*?)\s*-->\s*$/;

/** The annotation's meaning, or an error message. */
function parseAnnotation(text: string): Mode | string {
  const [kind = '', ...words] = text.replace(/\s*\(.*\)\s*$/, '').split(/\s+/);
  switch (kind) {
    case 'run': {
      const unknown = words.filter((word) => !(word in SERVERS));
      if (unknown.length > 0) {
        return `unknown server(s) ${unknown.join(', ')}; known: ${Object.keys(SERVERS).join(', ')}`;
      }
      return { kind: 'run', servers: words };
    }
    case 'compile-only':
      return words.length === 0 ? { kind } : `compile-only takes no words: "${text}"`;
    case 'skip':
      return words.length === 0 ? 'skip needs a reason: <!-- readme: skip REASON -->' : { kind };
    default:
      return `unknown annotation "${text}" (run [servers…], compile-only, skip REASON)`;
  }
}

/** The README's ```ts blocks with their modes, and any misuse of annotations. */
function extractBlocks(markdown: string): { blocks: Block[]; problems: string[] } {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  const problems: string[] = [];
  let pending: { line: number; mode: Mode | string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const annotation = ANNOTATION.exec(line);
    if (annotation) {
      if (pending) problems.push(`README.md:${pending.line}: annotation not followed by a block`);
      pending = { line: i + 1, mode: parseAnnotation(annotation[1] ?? '') };
      continue;
    }
    const fence = /^```(\S*)/.exec(line);
    if (fence) {
      const start = i;
      while (i + 1 < lines.length && !/^```\s*$/.test(lines[i + 1]!)) i++;
      const code = lines.slice(start + 1, i + 1).join('\n');
      i++; // the closing fence
      if (fence[1] === 'ts' || fence[1] === 'typescript') {
        const mode = pending?.mode ?? { kind: 'run', servers: [] };
        if (typeof mode === 'string') problems.push(`README.md:${pending!.line}: ${mode}`);
        else blocks.push({ line: start + 1, code, mode, dir: `line-${start + 1}` });
      } else if (pending) {
        problems.push(`README.md:${pending.line}: annotates a \`\`\`${fence[1]} block, not ts`);
      }
      pending = undefined;
      continue;
    }
    if (pending && line.trim() !== '') {
      problems.push(`README.md:${pending.line}: annotation not followed by a block`);
      pending = undefined;
    }
  }
  return { blocks, problems };
}

/**
 * Declarations for a compile-only block's relative imports (the reader's own modules): each
 * imported name as `any`. Keyed by the `.d.ts` file to write next to the block.
 */
function standIns(code: string): Map<string, string> {
  const files = new Map<string, string>();
  const imports = code.matchAll(/^import\s+([^;]*?)\s+from\s+'(\.[^']+)\.js';/gm);
  for (const [, clause = '', path = ''] of imports) {
    const names = /\{([^}]*)\}/.exec(clause)?.[1]?.split(',') ?? [];
    const lines = names
      .map((name) => name.trim().replace(/^type\s+/, ''))
      .filter((name) => name !== '')
      .map((name) => name.split(/\s+as\s+/)[0]!)
      .map((name) => `export declare const ${name}: any;\nexport type ${name} = any;`);
    const defaultName = /^([A-Za-z_$][\w$]*)/.exec(clause)?.[1];
    if (defaultName) lines.push('declare const standIn: any;\nexport default standIn;');
    files.set(`${path}.d.ts`, `${files.get(`${path}.d.ts`) ?? ''}${lines.join('\n')}\n`);
  }
  return files;
}

const { blocks, problems } = extractBlocks(README);
const runnable = blocks.filter((block) => block.mode.kind === 'run');
const compiled = blocks.filter((block) => block.mode.kind !== 'skip');

describe('README.md code blocks', { timeout: 120_000 }, () => {
  const project = join(SCRATCH, `readme-${process.pid}-${Date.now()}`);
  const servers: Array<{ stop(): Promise<void> }> = [];
  const serverEnv: Record<string, string> = {};
  let compileOutput: { ok: boolean; text: string } = { ok: false, text: 'not compiled' };

  beforeAll(async () => {
    const tarball = await packedTarball();
    // The package as installed, without npm: its dependencies (commander) and the client
    // libraries the blocks import resolve from the repository's node_modules, further up.
    const installed = join(project, 'node_modules', 'distlock');
    mkdirSync(installed, { recursive: true });
    await runToEnd('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'], {
      timeoutMs: 30_000,
    });
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'readme-blocks', private: true, type: 'module' }),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022', 'esnext.disposable'],
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: true,
          types: ['node'],
          rootDir: '.',
          outDir: 'out',
        },
        include: compiled.map((block) => `${block.dir}/**/*.ts`),
      }),
    );
    for (const block of compiled) {
      const dir = join(project, block.dir);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'main.ts'), `${block.code}\n`);
      if (block.mode.kind !== 'compile-only') continue;
      for (const [file, text] of standIns(block.code)) {
        mkdirSync(dirname(join(dir, file)), { recursive: true });
        writeFileSync(join(dir, file), text);
      }
    }
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    compileOutput = await runToEnd(process.execPath, [tsc, '-p', project], {
      cwd: project,
      timeoutMs: 90_000,
    }).then(
      () => ({ ok: true, text: '' }),
      (error: Error) => ({ ok: false, text: error.message }),
    );

    const wanted = new Set(
      runnable.flatMap((block) => (block.mode as { servers: string[] }).servers),
    );
    await Promise.all(
      [...wanted].map(async (name) => {
        const server = await SERVERS[name]!.start();
        servers.push(server);
        serverEnv[SERVERS[name]!.env] = server.url;
      }),
    );
  }, 240_000);

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(project, { recursive: true, force: true });
  });

  it('has a valid annotation, if any, before every block', () => {
    expect(problems).toEqual([]);
    expect(blocks.length).toBeGreaterThan(3);
  });

  it('compiles every block against the published package (strict, nodenext, ES2022)', () => {
    // Point tsc's file:line at README.md's lines.
    const text = compileOutput.text.replace(
      /line-(\d+)\/main\.ts\((\d+),(\d+)\)/g,
      (_match, fence: string, line: string, column: string) =>
        `README.md:${Number(fence) + Number(line)}:${column}`,
    );
    expect(compileOutput.ok, text).toBe(true);
  });

  it.each(runnable.map((block) => [block.line, block] as const))(
    'runs the block at README.md:%d',
    async (_line, block) => {
      expect(compileOutput.ok, 'the blocks did not compile').toBe(true);
      const tmp = tempDir('distlock-readme-run-');
      try {
        const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
          const child = execFile(
            process.execPath,
            [join(project, 'out', block.dir, 'main.js')],
            {
              cwd: project,
              env: { ...process.env, ...serverEnv, TMPDIR: tmp.path },
              timeout: 30_000,
            },
            (_error, stdout, stderr) =>
              resolve({ code: child.exitCode, output: `${stdout}\n${stderr}` }),
          );
        });
        expect(result.code, result.output).toBe(0);
      } finally {
        tmp.remove();
      }
    },
  );
});
