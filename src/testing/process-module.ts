/** What the suite's child processes share: reading their configuration and loading the backend. */
import { pathToFileURL } from 'node:url';
import type { LockBackend } from '../core/backend.js';

/** A required environment variable. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The module named by `DISTLOCK_CONTENDER_MODULE` (the suite's `processBackendModule`). */
export async function loadBackendModule(): Promise<{
  createBackend: () => LockBackend | Promise<LockBackend>;
}> {
  return (await import(pathToFileURL(env('DISTLOCK_CONTENDER_MODULE')).href)) as {
    createBackend: () => LockBackend | Promise<LockBackend>;
  };
}
