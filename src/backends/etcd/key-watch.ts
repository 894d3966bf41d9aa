/**
 * The backend's optional `watch`: call `onChange` on every delete under the key's directory.
 * (The core uses it only for backends without a queue; kept for callers of the contract.)
 */
import { sleep } from '../../core/abort.js';
import type { Unwatch } from '../../core/backend.js';
import type { EtcdCalls } from './calls.js';
import type { KeyLayout } from './keys.js';
import type { ResolvedEtcdOptions } from './options.js';

/** What {@link watchKey} works with. */
export interface KeyWatchParts {
  readonly calls: EtcdCalls;
  readonly layout: KeyLayout;
  readonly options: ResolvedEtcdOptions;
}

/** Watch deletes of `key`'s entries; resolves once the watch is in place (or after a bound). */
export async function watchKey(
  parts: KeyWatchParts,
  key: string,
  onChange: () => void,
  signal?: AbortSignal,
): Promise<Unwatch> {
  const { calls, layout, options } = parts;
  const watcher = calls.client.watch().prefix(layout.lockDir(key)).only('delete').watcher();
  const notify = () => {
    try {
      onChange();
    } catch {
      // The caller's callback must not break the watch stream.
    }
  };
  watcher.on('delete', notify);
  watcher.on('error', notify); // missed events are allowed; let the caller re-check
  const connected = new Promise<void>((resolve) => {
    watcher.once('connected', () => resolve());
    watcher.once('error', () => resolve());
  });
  // Wait (boundedly) for the watch to be in place so that a release right after is not missed.
  await Promise.race([connected, sleep(options.operationTimeoutMs, signal).catch(() => undefined)]);
  return () => watcher.cancel().catch(() => undefined);
}
