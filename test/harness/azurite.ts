/**
 * Spawns Azurite's blob service (the `azurite` npm package, a devDependency) on a free loopback
 * port, in memory: a restart forgets every blob and lease. `node_modules/.bin/azurite-blob` is
 * spawned directly (through `npx` a kill would leave the server orphaned), always with
 * `--disableTelemetry` (without it Azurite phones home and takes seconds to exit) and
 * `--skipApiVersionCheck` (the SDK speaks a newer API version than Azurite declares).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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

const BIN = fileURLToPath(new URL('../../node_modules/.bin/azurite-blob', import.meta.url));

/** A running Azurite blob service. */
export interface AzuriteServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  readonly blobEndpoint: string;
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
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} is missing: run npm ci (azurite is a devDependency)`);
  }
  return startOnFreePorts(startAzuriteOnce);
}

async function startAzuriteOnce(): Promise<AzuriteServer> {
  const port = await freePort();
  // Its working directory (in memory, it writes nothing there; a debug log would go there).
  const dir = tempDir('distlock-azurite-');
  const spawnOne = async () => {
    const child = spawnServer(
      BIN,
      [
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
        20_000,
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
  return {
    port,
    blobEndpoint,
    connectionString: (key = AZURITE_KEY) =>
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${key};BlobEndpoint=${blobEndpoint};`,
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
