/**
 * Starting the suite's child processes (the contender and the holder) with the backend module
 * under test, compiled or through `tsx` as the files require.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A child process of the suite, with its stderr kept for failure messages. */
export interface SuiteChild {
  readonly process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the child exits. */
  readonly exited: Promise<{ readonly code: number | null; readonly stderr: string }>;
  /** Everything the child printed on stderr so far. */
  stderr(): string;
}

/**
 * Start `script` (`process-contender` or `process-holder`, next to this module) with the backend
 * module `backendModule` and the extra environment `env`.
 */
export function startChild(
  script: 'process-contender' | 'process-holder',
  backendModule: string,
  env: Record<string, string>,
  stdout: 'pipe' | 'ignore' = 'ignore',
): SuiteChild {
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const path = fileURLToPath(new URL(`./${script}${extension}`, import.meta.url));
  const needsTsx = path.endsWith('.ts') || backendModule.endsWith('.ts');
  const child = spawn(process.execPath, [...(needsTsx ? ['--import', 'tsx'] : []), path], {
    env: { ...process.env, DISTLOCK_CONTENDER_MODULE: backendModule, ...env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-8_000)));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('exit', (code) => resolve({ code, stderr }));
  });
  return { process: child, exited, stderr: () => stderr };
}

/** One critical section as a contender recorded it. */
export interface Interval {
  readonly pid: number;
  readonly fence: string;
  readonly start: number;
  readonly end: number;
}

/** The most intervals that overlap at any instant. */
export function maxOverlap(intervals: readonly Interval[]): number {
  const edges = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ]);
  // At equal times, ends come first: a section that ends as another starts does not overlap it.
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let inside = 0;
  let most = 0;
  for (const edge of edges) {
    inside += edge.delta;
    most = Math.max(most, inside);
  }
  return most;
}

/**
 * Run `processes` contenders on `key` to the end (each `iterations` holdings, logged to `out`), and
 * read back every holding they recorded. `env` adds the mode's variables (a counter file, a limit).
 */
export async function runContenders(
  backendModule: string,
  processes: number,
  settings: { key: string; iterations: number; out: string; env: Record<string, string> },
): Promise<{
  readonly results: ReadonlyArray<{ readonly code: number | null; readonly stderr: string }>;
  readonly intervals: Interval[];
}> {
  writeFileSync(settings.out, '');
  const results = await Promise.all(
    Array.from(
      { length: processes },
      () =>
        startChild('process-contender', backendModule, {
          DISTLOCK_CONTENDER_KEY: settings.key,
          DISTLOCK_CONTENDER_ITERATIONS: String(settings.iterations),
          DISTLOCK_CONTENDER_OUT: settings.out,
          ...settings.env,
        }).exited,
    ),
  );
  const intervals = readFileSync(settings.out, 'utf8')
    .trim()
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Interval);
  return { results, intervals };
}
