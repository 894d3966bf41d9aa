/**
 * The etcd backend (`distlock/etcd`): etcd's own mutex recipe, in etcd's own key layout, so that
 * distlock, `etcdctl lock NAME` and Go services using `concurrency.Mutex` on one name exclude
 * each other and queue in one order. Waiters queue in etcd in arrival (create-revision) order and
 * each watches its predecessor (and the entry before it until the predecessor holds the lock, so a
 * handoff needs no read), never the whole queue; fences are etcd create revisions (strictly
 * increasing per name); acquiring and releasing are one write each.
 *
 * Entries live under session leases, one lease per lease TTL in use: a holding's lease has the
 * request's `ttlMs` rounded up to whole seconds (etcd's granularity; at least etcd's minimum lease
 * TTL, 2 s with default election settings), so a crashed holder's lock comes free after that,
 * plus up to half a second (etcd checks expiries every 500 ms). A holder whose keep-alives fail is
 * told its lease is lost (`lease.signal`) before etcd can let anyone else in.
 *
 * Key layout (see `keys.ts`): lock `k` is the keys under `k/`, one per holder or waiter, named
 * `k/<lease hex>` as etcd's recipe names them; a second holding or wait of `k` under the same
 * lease (one process, one TTL) is `k/<lease hex>-1`, `-2`, …. A key with a `/` is its own lock:
 * `a` and `a/b` never wait for each other in distlock (Go's mutex on `a` does wait for earlier
 * holders of `a/b`, as etcd's recipe covers `a/b/…` under `a/`). `layout: 'distlock-v1'` keeps
 * distlock 0.1's layout instead.
 *
 * Read-write locks and semaphores (`capabilities.shared`) follow the shape of etcd's RWMutex
 * recipe in the same queue: a reader's or permit's entry is named like any other, its value marks
 * it shared (byte 0xFF, `r` or `s<limit>`, 0xFF, then the token; a mutex's value stays the bare
 * token). A writer (the mutex) waits for the last entry of any kind before it; a reader for the
 * last exclusive entry before it, so once a writer waits, later readers queue behind it; a permit
 * holds once no exclusive entry and fewer than `limit` entries are ahead of it (semaphore waiters
 * are served in arrival order) and watches every entry ahead until then. `etcdctl lock NAME` and
 * Go's mutex see readers and permits as entries ahead of theirs, and wait for them. Fences are
 * create revisions, readers' too.
 *
 * Through an etcd outage, releases and `close()` retry for `releaseTimeoutMs`; a client built from
 * a URL lets calls through again within half a second of etcd's return. Against an etcd that is
 * down, the first call fails at once (connection refused) or after `connectTimeoutMs` (no
 * answer), with the root cause at the end of the error's `cause` chain.
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
import type { Etcd3, IOptions } from 'etcd3';
import type { LockBackend } from '../../core/backend.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { EtcdBackend } from './backend.js';
import { createEtcdClient, endpointsOf } from './client.js';
import { parseEtcdUrl, resolveOptions, type EtcdBackendOptions } from './options.js';

export {
  ETCD_DEFAULTS,
  type EtcdBackendOptions,
  type EtcdKeyLayout,
  type EtcdSessionEvent,
} from './options.js';
export type { EtcdBackend } from './backend.js';

/**
 * Create an etcd backend over a user-supplied `Etcd3` client (left open on `close()`, and keeping
 * the fault-handling policies it was built with), or over a client built from an
 * `etcd://[user:password@]host:port[,host:port…]` URL (closed on `close()`).
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
    // Its hosts, for messages only: a client passed in may not say.
    const given = (options.client as unknown as { options?: Partial<IOptions> }).options;
    const endpoints = given?.hosts ? endpointsOf(given as IOptions) : ['its endpoints'];
    return new EtcdBackend(options.client, false, resolved, endpoints);
  }
  if (options.url === undefined) {
    throw new InvalidArgumentError('url', 'pass `url` (etcd://host:port) or an Etcd3 `client`');
  }
  const clientOptions = parseEtcdUrl(options.url);
  return new EtcdBackend(
    createEtcdClient(clientOptions),
    true,
    resolved,
    endpointsOf(clientOptions),
  );
}
