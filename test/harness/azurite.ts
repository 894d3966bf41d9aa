/**
 * Spawns Azurite's blob service (the `azurite` npm package, a devDependency) on a free loopback
 * port, in memory: a restart forgets every blob and lease. Azurite's blob entry point (what
 * `node_modules/.bin/azurite-blob` runs) is spawned directly under this Node (through `npx` a
 * kill would leave the server orphaned), always with
 * `--disableTelemetry` (without it Azurite phones home and takes seconds to exit) and
 * `--skipApiVersionCheck` (the SDK speaks a newer API version than Azurite declares).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  freePort,
  killAndWait,
  spawnServer,
  startOnFreePorts,
  tempDir,
  waitUntil,
  WillNotHappen,
} from './process.js';

/** Azurite's well-known development account (public, documented by Microsoft: not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** The `azurite` package's directory and version (found from here or from a compiled copy). */
export function azuritePackage(): { readonly dir: string; readonly version: string } {
  const manifest = createRequire(import.meta.url).resolve('azurite/package.json');
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return { dir: dirname(manifest), version };
}

/** A running Azurite blob service. */
export interface AzuriteServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  readonly blobEndpoint: string;
  /** {@link connectionString} with the right key: names `:port`, as the fault suite's `url` must. */
  readonly url: string;
  /** A connection string for the development account (`key` overrides its account key). */
  connectionString(key?: string): string;
  readonly process: ChildProcess;
  /** SIGKILL the server: in-memory persistence, so every blob and lease is gone. */
  kill(): Promise<void>;
  /** Start a fresh (empty) server on the same port after `kill()`. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT the server (a store that stops answering). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/**
 * Start Azurite's blob service on a free loopback port.
 *
 * @example
 * ```ts
 * const azurite = await startAzurite();
 * const backend = azureBlobBackend({ connectionString: azurite.connectionString(), containerName: 'locks' });
 * await azurite.stop();
 * ```
 */
export async function startAzurite(): Promise<AzuriteServer> {
  let dir: string;
  try {
    dir = azuritePackage().dir;
  } catch (error) {
    throw new Error('the azurite package is missing: run npm ci (it is a devDependency)', {
      cause: error,
    });
  }
  // Node running Azurite's blob entry point itself (what node_modules/.bin/azurite-blob runs), so
  // that the child is the server: killing it kills the server.
  const main = join(dir, 'dist/src/blob/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: reinstall azurite`);
  return startOnFreePorts(() => startAzuriteOnce(main));
}

async function startAzuriteOnce(main: string): Promise<AzuriteServer> {
  const port = await freePort();
  // Its working directory (in memory, it writes nothing there; a debug log would go there).
  const dir = tempDir('distlock-azurite-');
  const spawnOne = async () => {
    const child = spawnServer(
      process.execPath,
      [
        main,
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--inMemoryPersistence',
        '--skipApiVersionCheck',
        '--disableTelemetry',
      ],
      { cwd: dir.path },
    );
    try {
      await waitUntil(
        `azurite-blob on port ${port}`,
        () => {
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new WillNotHappen(`azurite-blob exited:\n${child.output()}`);
          }
          return /successfully listen/i.test(child.output());
        },
        15_000, // three tries fit in a 60 s hook
      );
    } catch (error) {
      await killAndWait(child);
      throw error;
    }
    return child;
  };
  let child: ChildProcess;
  try {
    child = await spawnOne();
  } catch (error) {
    dir.remove();
    throw error;
  }
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const connectionString = (key = AZURITE_KEY) =>
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${key};BlobEndpoint=${blobEndpoint};`;
  return {
    port,
    blobEndpoint,
    url: connectionString(),
    connectionString,
    get process() {
      return child;
    },
    kill: () => killAndWait(child),
    async restart() {
      await killAndWait(child);
      child = await spawnOne();
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGCONT');
      await killAndWait(child);
      dir.remove();
    },
  };
}
