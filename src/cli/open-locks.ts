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

/** Options of {@link openLocks}. */
export interface OpenLocksOptions {
  /** The manager's lease TTL; on etcd also the session's, so a crashed holder frees after it. */
  readonly ttlMs?: number;
  /**
   * Told each new moment before which the store cannot free this process's locks by itself, where
   * that is tracked apart from the lease (etcd: the session lease, kept alive separately).
   */
  readonly onStoreDeadline?: (deadline: number) => void;
}

/** etcd's smallest session TTL the backend accepts. */
const MIN_ETCD_SESSION_TTL_MS = 1_000;

/**
 * Open the backend and a lock manager over it. The caller must `close()` the manager.
 * @throws {InvalidArgumentError} for a bad URL (with its password redacted).
 */
export async function openLocks(
  backendOption: string | undefined,
  options: OpenLocksOptions = {},
): Promise<LockManager> {
  const url = resolveBackendUrl(backendOption);
  openedLabel = redactUrl(url ?? `file://${defaultLockDir()}`);
  for (const secret of secretsOf(url ?? '')) addSecret(secret);
  const { ttlMs, onStoreDeadline } = options;
  const backend = await openBackend(url, {
    etcd: {
      ...(ttlMs === undefined ? {} : { sessionTtlMs: Math.max(MIN_ETCD_SESSION_TTL_MS, ttlMs) }),
      ...(onStoreDeadline === undefined
        ? {}
        : {
            onSessionEvent: (event) => {
              if (event.type !== 'lost') onStoreDeadline(event.deadline);
            },
          }),
    },
  });
  try {
    return createLocks({ backend, ...(ttlMs === undefined ? {} : { ttlMs }) });
  } catch (error) {
    await backend.close().catch(() => undefined);
    throw error;
  }
}
