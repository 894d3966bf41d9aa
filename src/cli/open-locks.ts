/**
 * The lock manager a command works with: the backend named by `--backend`, else `DISTLOCK_URL`,
 * else lock files under the OS temp dir.
 */
import { defaultLockDir, openBackend, redactUrl, secretsOf } from '../backend-url.js';
import { createLocks, type LockManager } from '../index.js';
import { addSecret } from './output.js';

/** The environment variable that names the backend when `--backend` is not given. */
export const BACKEND_URL_ENV = 'DISTLOCK_URL';

/** `--backend`, else `$DISTLOCK_URL`, else undefined (the default lock directory). */
export function resolveBackendUrl(option: string | undefined): string | undefined {
  const fromEnv = process.env[BACKEND_URL_ENV];
  if (option !== undefined && option.trim() !== '') return option;
  return fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv : undefined;
}

let openedLabel: string | undefined;

/** The redacted URL of the backend opened last, for error messages; undefined before any. */
export function openedBackendLabel(): string | undefined {
  return openedLabel;
}

/**
 * Open the backend and a lock manager over it. The caller must `close()` the manager.
 * @throws {InvalidArgumentError} for a bad URL (with its password redacted).
 */
export async function openLocks(
  backendOption: string | undefined,
  options: { ttlMs?: number; waitMs?: number } = {},
): Promise<LockManager> {
  const url = resolveBackendUrl(backendOption);
  openedLabel = redactUrl(url ?? `file://${defaultLockDir()}`);
  for (const secret of secretsOf(url ?? '')) addSecret(secret);
  const backend = await openBackend(url);
  try {
    return createLocks({ backend, ...options });
  } catch (error) {
    await backend.close().catch(() => undefined);
    throw error;
  }
}
