/**
 * The interface the lock-kind benchmarks (B4–B6: readers, a mixed read/write load, a semaphore)
 * put every contender behind, and distlock's read-write lock and semaphore behind it.
 */
import { createLocks, LockTimeoutError, type Lease } from '../../src/index.js';
import type { ContenderRole } from './contender.js';
import type { BackendOpener } from './distlock.js';

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
    async createClient(): Promise<KindsClient<Lease>> {
      const { backend, close } = await options.open();
      const locks = createLocks({ backend, ttlMs: options.ttlMs });
      return {
        async acquire(kind, key) {
          try {
            if (kind === 'permit') return await locks.semaphore(key, options).acquire();
            const lock = locks.readWrite(key);
            return await (kind === 'read' ? lock.read() : lock.write());
          } catch (error) {
            if (error instanceof LockTimeoutError) return null;
            throw error;
          }
        },
        async release(lease) {
          await lease.release();
        },
        async close() {
          await locks.close();
          await close();
        },
      };
    },
  };
}
