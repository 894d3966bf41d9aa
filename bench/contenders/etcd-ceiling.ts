/**
 * The ceiling of any etcd lock under contention (B2 only): a lock that is perfect everywhere but
 * at the store. Exclusion and the FIFO handoff happen in this process, for free, in distlock's
 * memory backend (no watch, no read, no queue entry to write); the one thing kept is the write
 * every release of an etcd lock must make (here a delete), awaited before the next holder may go,
 * since other processes can only learn of a release once etcd has it.
 *
 * No lock on etcd can give more critical sections per second than this row, nor shorter waits at
 * the same fairness. It shows how far the targets can go on this machine: the rest of a section
 * is the benchmark's own counter read and write.
 */
import type { LeaseRef } from '../../src/core/backend.js';
import { memoryBackend } from '../../src/backends/memory/index.js';
import type { Contender } from './contender.js';
import { onOwnEtcdConnection } from './etcd-connection.js';

/** Longer than any run: the in-process lock never expires under a client. */
const TTL_MS = 3_600_000;
/** The memory backend's waits follow a signal; these never end. */
const NEVER = new AbortController().signal;
const NO_ABORT = { signal: NEVER, onAbort: () => () => undefined };

/** The ceiling: in-process FIFO handoff plus one delete per release, on the client's own connection. */
export function etcdReleaseWriteCeiling(port: number): Contender {
  const local = memoryBackend();
  let tokens = 0;
  return {
    name: 'ceiling: free handoff + release write',
    role: 'floor',
    excludes: true,
    tuned: false,
    settings: 'in-process FIFO handoff; each release deletes a key in etcd first (no lock in etcd)',
    createClient: () =>
      onOwnEtcdConnection<LeaseRef>(port, (etcd) => ({
        async acquire(key) {
          const request = { key, token: String((tokens += 1)), ttlMs: TTL_MS };
          await local.acquire!(request, NO_ABORT);
          return request;
        },
        async release(lease) {
          try {
            await etcd.delete().key(`${lease.key}/released`);
          } finally {
            await local.release(lease);
          }
        },
      })),
  };
}
