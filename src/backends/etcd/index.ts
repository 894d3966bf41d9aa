/**
 * The etcd backend (`distlock/etcd`): etcd's mutex recipe over one session lease per backend.
 * Waiters queue in etcd in arrival (create-revision) order and each watches its predecessor (and
 * the entry before it until the predecessor holds the lock, so a handoff needs no read), never the
 * whole queue; fences are etcd revisions; acquiring and releasing are one write each; a holder
 * whose session keep-alives fail is told its lease is lost (`lease.signal`) before etcd can let
 * anyone else in.
 *
 * Requires the optional peer dependency `etcd3`.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { etcdBackend } from 'distlock/etcd';
 *
 * const locks = createLocks({ backend: etcdBackend({ url: 'etcd://10.0.0.1:2379,10.0.0.2:2379' }) });
 * await locks.withLock('invoice:42', async (lease) => {
 *   await chargeCard({ fence: lease.fence, signal: lease.signal });
 * });
 * await locks.close();
 * ```
 */
import { Etcd3 } from 'etcd3';
import type { LockBackend } from '../../core/backend.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { EtcdBackend } from './backend.js';
import { parseEtcdUrl, resolveOptions, type EtcdBackendOptions } from './options.js';

export { ETCD_DEFAULTS, type EtcdBackendOptions, type EtcdSessionEvent } from './options.js';
export type { EtcdBackend } from './backend.js';

/**
 * Create an etcd backend over a user-supplied `Etcd3` client (left open on `close()`), or over a
 * client built from an `etcd://host:port[,host:port…]` URL (closed on `close()`).
 *
 * @throws {InvalidArgumentError} for a missing or malformed `client`/`url` or a bad option.
 * @example
 * ```ts
 * const client = new Etcd3({ hosts: ['http://127.0.0.1:2379'] });
 * const locks = createLocks({ backend: etcdBackend({ client, sessionTtlMs: 5_000 }) });
 * ```
 */
export function etcdBackend(options: EtcdBackendOptions): LockBackend {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object with `client` or `url`');
  }
  const resolved = resolveOptions(options);
  if (options.client !== undefined && options.url !== undefined) {
    throw new InvalidArgumentError('url', 'pass either `client` or `url`, not both');
  }
  if (options.client !== undefined) {
    const client = options.client as Partial<Etcd3> | null;
    // Duck-typed, so that a second copy of `etcd3` in node_modules still works.
    if (typeof client?.kv?.txn !== 'function' || typeof client.watch !== 'function') {
      throw new InvalidArgumentError('client', 'must be an Etcd3 client from the `etcd3` package');
    }
    return new EtcdBackend(options.client, false, resolved);
  }
  if (options.url === undefined) {
    throw new InvalidArgumentError('url', 'pass `url` (etcd://host:port) or an Etcd3 `client`');
  }
  return new EtcdBackend(new Etcd3(parseEtcdUrl(options.url)), true, resolved);
}
