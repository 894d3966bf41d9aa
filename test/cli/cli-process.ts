/**
 * Spawning the real `distlock` command (`node --import tsx src/cli/main.ts`) from tests, with
 * captured output, exit code and timing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** How a `distlock` invocation ended. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** When the process exited (epoch ms). */
  readonly exitedAt: number;
  readonly durationMs: number;
}

/** A running `distlock` invocation. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
}

/** Start `distlock ARGS…` with `env` added to a copy of the environment minus `DISTLOCK_URL`. */
export function startCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const baseEnv = { ...process.env };
  delete baseEnv.DISTLOCK_URL;
  delete baseEnv.DISTLOCK_DEBUG;
  const startedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...baseEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const exitedAt = Date.now();
      resolve({ code, signal, stdout, stderr, exitedAt, durationMs: exitedAt - startedAt });
    });
  });
  return { child, done };
}

/** Run `distlock ARGS…` to completion. */
export function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

/**
 * Run several invocations, at most `concurrency` at a time (each costs a Node.js start-up, and
 * the test machine has two cores); results in input order.
 */
export async function cliAll(
  invocations: ReadonlyArray<{ args: readonly string[]; env?: Record<string, string> }>,
  concurrency = 4,
): Promise<CliResult[]> {
  const results: CliResult[] = new Array<CliResult>(invocations.length);
  let next = 0;
  const worker = async () => {
    while (next < invocations.length) {
      const index = next++;
      const invocation = invocations[index]!;
      results[index] = await cli(invocation.args, invocation.env);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, invocations.length) }, worker));
  return results;
}

/** The non-empty lines of a file, or [] if it does not exist yet. */
export function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((line) => line !== '');
  } catch {
    return [];
  }
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
