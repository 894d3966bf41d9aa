/**
 * The ceiling of any etcd lock under contention (B2 only): a lock that is perfect everywhere but
 * at the store. Exclusion and the FIFO handoff happen in this process, for free (no watch, no
 * read, no queue entry to write); the one thing kept is the write every release of an etcd lock
 * must make (here a delete), awaited before the next holder may go, since other processes can
 * only learn of a release once etcd has it.
 *
 * No lock on etcd can give more critical sections per second than this row, nor shorter waits at
 * the same fairness. It shows how far the targets can go on this machine: the rest of a section
 * is the benchmark's own counter read and write.
 */
import type { Contender, LockClient } from './contender.js';
import { connectEtcd } from './etcd-connection.js';

/** An in-process FIFO mutex per key, shared by the clients of one contender. */
class LocalQueue {
  #held = false;
  readonly #waiters: (() => void)[] = [];

  async take(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Hand over to the longest waiter, or free. */
  give(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  }
}

/** The ceiling: in-process FIFO handoff plus one delete per release, on the client's own connection. */
export function etcdReleaseWriteCeiling(port: number): Contender {
  const queues = new Map<string, LocalQueue>();
  return {
    name: 'ceiling: free handoff + release write',
    role: 'floor',
    excludes: true,
    tuned: false,
    settings: 'in-process FIFO handoff; each release deletes a key in etcd first (no lock in etcd)',
    async createClient(): Promise<LockClient<string>> {
      const etcd = await connectEtcd(port);
      return {
        async acquire(key) {
          let queue = queues.get(key);
          if (!queue) queues.set(key, (queue = new LocalQueue()));
          await queue.take();
          return key;
        },
        async release(key) {
          try {
            await etcd.delete().key(`${key}/released`);
          } finally {
            queues.get(key)?.give();
          }
        },
        close: async () => etcd.close(),
      };
    },
  };
}
