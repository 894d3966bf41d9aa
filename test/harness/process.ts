/**
 * Shared helpers for test harnesses that spawn real servers on loopback: free ports, installing a
 * missing server from Debian's packages (as root), waiting for readiness, and killing process trees.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let aptUpdated = false;

/**
 * Make sure `command` is on PATH. As root, installs `debPackages` with apt-get (running
 * `apt-get update` once); otherwise fails with the exact command to run. A missing server is a
 * test failure, never a skip.
 */
export function ensureCommand(command: string, debPackages: string[]): void {
  if (commandExists(command)) return;
  const install = `apt-get install -y ${debPackages.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `"${command}" is not installed. Install it with: sudo apt-get update && sudo ${install}`,
    );
  }
  if (!aptUpdated) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    aptUpdated = true;
  }
  execFileSync('sh', ['-c', install], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (!commandExists(command)) throw new Error(`"${command}" is still missing after: ${install}`);
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
