/**
 * The interface the lock-kind benchmarks (B4–B6: readers, a mixed read/write load, a semaphore)
 * put every contender behind, and distlock's read-write lock and semaphore behind it.
 */
import type { Lease } from '../../src/index.js';
import type { Contender, ContenderRole } from './contender.js';
import { openManagerClient, type BackendOpener } from './distlock.js';

/** How a holding is taken: a read share, the write lock, or a semaphore permit. */
export type Kind = 'read' | 'write' | 'permit';

/** One client of a contender, with its own connection(s). */
export interface KindsClient<Handle = unknown> {
  /**
   * Take `key` as `kind`, waiting the contender's way. Resolves `null` when it gave up by its
   * own rules (the scenario counts a give-up and asks again).
   */
  acquire(kind: Kind, key: string): Promise<Handle | null>;
  release(handle: Handle): Promise<void>;
  close(): Promise<void>;
}

/** A named configuration of a lock library (or a floor) offering some of the kinds. */
export interface KindsContender {
  readonly name: string;
  readonly role: ContenderRole;
  /** The retry-tuned variant of a peer (targets compare against these). */
  readonly tuned: boolean;
  readonly settings: string;
  readonly kinds: readonly Kind[];
  createClient(): Promise<KindsClient>;
}

/** distlock's read-write lock and semaphore (`limit` permits) over the backend `open` makes. */
export function distlockKinds(options: {
  readonly open: BackendOpener;
  readonly ttlMs: number;
  readonly limit: number;
}): KindsContender {
  return {
    name: 'distlock',
    role: 'distlock',
    tuned: false,
    settings: `readWrite(key).read()/write(), semaphore(key, { limit: ${options.limit} }); createLocks defaults, server-side FIFO queue`,
    kinds: ['read', 'write', 'permit'],
    createClient: (): Promise<KindsClient<Lease>> =>
      openManagerClient(options, (locks, kind: Kind, key: string) => {
        if (kind === 'permit') return locks.semaphore(key, options).acquire();
        const lock = locks.readWrite(key);
        return kind === 'read' ? lock.read() : lock.write();
      }),
  };
}

/** A lock-interface contender (a floor such as PING pairs) as one offering `kinds`. */
export function asKinds(contender: Contender, kinds: readonly Kind[]): KindsContender {
  return {
    ...contender,
    kinds,
    async createClient(): Promise<KindsClient> {
      const client = await contender.createClient();
      return {
        acquire: (_kind, key) => client.acquire(key),
        release: (handle) => client.release(handle),
        close: () => client.close(),
      };
    },
  };
}
