/**
 * On etcd: the floors (one put + one delete, two fsynced writes, no lock; and the txn + delete
 * that a lock must at least send) and `etcd3`'s own `Lock` (lease grant + compare-and-put under
 * it; release revokes the lease). `etcd3`'s Lock cannot wait, so the harness retries it with
 * jittered exponential backoff.
 */
import { EtcdLockFailedError, type ITxnRequest, type Lock } from 'etcd3';
import { sleep, type Contender } from './contender.js';
import { onOwnEtcdConnection } from './etcd-connection.js';

/** One put + one delete of the key: what a lock that holds a session lease must at least write. */
export function etcdPutDelete(port: number): Contender {
  return {
    name: 'put + delete',
    role: 'floor',
    excludes: false,
    tuned: false,
    settings: 'put key, delete key (2 writes, no lock)',
    createClient: () =>
      onOwnEtcdConnection<string>(port, (etcd) => ({
        async acquire(key) {
          await etcd.put(key).value('held');
          return key;
        },
        async release(key) {
          await etcd.delete().key(key);
        },
      })),
  };
}

/**
 * The least an etcd lock itself must send: one txn that puts the key only if the lock's
 * directory is empty (the check every lock makes; a plain put cannot make it) and one delete.
 * No lease, no queue, no fence bookkeeping: it shows how much of distlock's B1 ratio is the txn.
 */
export function etcdTxnDelete(port: number): Contender {
  return {
    name: 'txn + delete',
    role: 'floor',
    excludes: false,
    tuned: false,
    settings: 'txn: put key/x if nothing under key/ exists; delete key/x (2 writes, no lock)',
    createClient: () =>
      onOwnEtcdConnection<Buffer>(port, (etcd) => {
        // A floor sends its requests and nothing else: each key's request is built once.
        const requests = new Map<string, { entry: Buffer; txn: ITxnRequest }>();
        const requestFor = (key: string) => {
          let known = requests.get(key);
          if (!known) {
            const entry = Buffer.from(`${key}/x`);
            const txn: ITxnRequest = {
              compare: [
                {
                  key: Buffer.from(`${key}/`),
                  range_end: Buffer.from(`${key}0`), // '0' follows '/'
                  target: 'Create',
                  result: 'Equal',
                  create_revision: 0,
                },
              ],
              success: [{ request_put: { key: entry, value: Buffer.from('held') } }],
            };
            requests.set(key, (known = { entry, txn }));
          }
          return known;
        };
        return {
          async acquire(key) {
            const { entry, txn } = requestFor(key);
            await etcd.kv.txn(txn);
            return entry;
          },
          async release(entry) {
            await etcd.kv.deleteRange({ key: entry });
          },
        };
      }),
  };
}

/** Backoff between failed attempts: `firstMs · 2^n` capped at `maxMs`, with full jitter. */
export interface BackoffSettings {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** etcd3's `Lock` retried by the harness until it succeeds (it never waits on its own). */
export function etcd3Lock(
  port: number,
  options: { ttlSeconds: number; tuned: boolean; backoff: BackoffSettings },
): Contender {
  const { firstMs, maxMs } = options.backoff;
  return {
    name: `etcd3 Lock (${options.tuned ? 'tuned' : 'backoff'})`,
    role: 'peer',
    excludes: true,
    tuned: options.tuned,
    settings: `ttl ${options.ttlSeconds} s; harness retry ${firstMs}→${maxMs} ms ×2, full jitter`,
    createClient: () =>
      onOwnEtcdConnection<Lock>(port, (etcd) => ({
        async acquire(key) {
          for (let attempt = 0; ; attempt++) {
            const lock = etcd.lock(key).ttl(options.ttlSeconds);
            try {
              return await lock.acquire();
            } catch (error) {
              if (!(error instanceof EtcdLockFailedError)) throw error;
            }
            const ceiling = Math.min(maxMs, firstMs * 2 ** Math.min(attempt, 20));
            await sleep(Math.random() * ceiling);
          }
        },
        async release(lock) {
          await lock.release();
        },
      })),
  };
}
