/**
 * Shared helpers for test harnesses that spawn real servers on loopback: free ports, waiting for
 * readiness, and killing process trees. Which servers exist and how they are installed:
 * `servers.ts` and `install-servers.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Thrown by a {@link waitUntil} check when waiting longer cannot help (the server exited, or
 * another process answers on its port): the wait ends at once instead of at its timeout.
 */
export class WillNotHappen extends Error {}

/** Poll `check` until it resolves truthy or `timeoutMs` passes. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      if (error instanceof WillNotHappen) throw error;
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = 'distlock-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Spawn a server process with its output captured (shown if it fails to start). */
export function spawnServer(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): ChildProcess & { output: () => string } {
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return Object.assign(child, { output: () => output });
}

/**
 * Start a server, trying again (on new free ports) if it fails to come up. A port picked by
 * `freePort` can be taken before the server binds it: by a server another test file starts at the
 * same moment, or as the local port of some client's connection.
 */
export async function startOnFreePorts<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= attempts) throw error;
    }
  }
}

/** SIGKILL a child and wait for it to exit. */
export async function killAndWait(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

/** Options of {@link runToEnd}. */
export interface RunToEndOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs: number;
  /** @default ['ignore', 'pipe', 'pipe'] */
  readonly stdio?: Array<'ignore' | 'pipe' | number>;
}

/**
 * Run a command to completion; resolves with its output, rejects with the output's tail if it
 * fails or outlives `timeoutMs`.
 */
export function runToEnd(
  command: string,
  args: readonly string[],
  options: RunToEndOptions,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) return resolve({ stdout, stderr });
      const how =
        signal === null ? `exit code ${code}` : `${signal} (time limit ${options.timeoutMs} ms?)`;
      const tail = (stdout + stderr).slice(-4_000);
      reject(new Error(`${command} ${args.join(' ')} failed with ${how}:\n${tail}`));
    });
  });
}

/**
 * Hold an exclusive lock on the file at `path` while `body` runs, so that processes sharing the
 * file take turns (two test runs installing servers, two test files packing the package).
 * `flock(1)` locks the open file this process passes it as fd 3; the lock belongs to that open
 * file, so it stays held after flock exits, until this process closes the file — or dies, when the
 * kernel releases it: a lock never goes stale.
 */
export async function withFileLock<T>(
  path: string,
  timeoutS: number,
  body: () => Promise<T>,
): Promise<T> {
  const fd = openSync(path, 'a');
  try {
    await runToEnd('flock', ['--exclusive', '--wait', String(timeoutS), '3'], {
      timeoutMs: (timeoutS + 30) * 1_000,
      stdio: ['ignore', 'pipe', 'pipe', fd],
    }).catch((error: unknown) => {
      const notFound = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new Error(
        notFound
          ? 'flock(1) is not installed (Debian: util-linux); it keeps processes from overlapping'
          : `another process held ${path} for more than ${timeoutS} s`,
        { cause: error },
      );
    });
    return await body();
  } finally {
    closeSync(fd);
  }
}
