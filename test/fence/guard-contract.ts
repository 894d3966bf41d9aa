/**
 * The behaviour every fence guard shares, run by each guard's test file against a real store: the
 * rule of `src/fence/rules.ts` for exclusive and shared holders, reads that record fences (the
 * lost update a write-only check lets through), atomicity under concurrent accesses, and typed
 * errors.
 */
import { describe, expect, it } from 'vitest';
import { LockError, StaleFenceError as RootStaleFenceError } from '../../src/index.js';
import { StaleFenceError, type FenceHolder, type FenceState } from '../../src/fence/index.js';

/** One guarded resource, seen through the operations every guard has (values as strings). */
export interface GuardUnderTest {
  read(holder: FenceHolder): Promise<string | null>;
  write(value: string, holder: FenceHolder): Promise<void>;
  register(holder: FenceHolder): Promise<void>;
  fences(): Promise<FenceState>;
  /** Guards that have it: the value without a fence check. */
  peek?(): Promise<string | null>;
}

const shared = (fence: bigint) => ({ fence, mode: 'shared' as const });

async function staleError(access: Promise<unknown>): Promise<StaleFenceError> {
  const error = await access.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StaleFenceError);
  return error as StaleFenceError;
}

/** Register the shared tests; `fresh()` returns a guard over a new, never-used resource. */
export function guardContract(fresh: () => Promise<GuardUnderTest> | GuardUnderTest): void {
  describe('fence guard contract', () => {
    it('refuses a write below the highest fence seen, accepts equal and higher ones', async () => {
      const guard = await fresh();
      await guard.write('a', 5n);
      await guard.write('b', 5n); // the same holder writes twice
      const error = await staleError(guard.write('stale', 4n));
      expect(error).toBeInstanceOf(LockError);
      expect(error).toBeInstanceOf(RootStaleFenceError);
      expect(error.code).toBe('STALE_FENCE');
      expect(error.retryable).toBe(false);
      expect(error.fence).toBe(4n);
      expect(error.highestFence).toBe(5n);
      expect(await guard.read(5n)).toBe('b');
      await guard.write('c', 9n);
      expect(await guard.read(9n)).toBe('c');
      expect(await guard.fences()).toEqual({ fence: 9n, sharedFence: null });
      if (guard.peek) expect(await guard.peek()).toBe('c');
      expect(await guard.fences()).toEqual({ fence: 9n, sharedFence: null });
    });

    it('a read records its fence: the paused holder of a read-modify-write cannot write after a newer read', async () => {
      const guard = await fresh();
      await guard.write('0', 1n);
      const a = await guard.read(5n); // A reads, then is paused past its lease
      const b = await guard.read(6n); // B, the next holder, reads the same state
      expect([a, b]).toEqual(['0', '0']);
      await staleError(guard.write(String(Number(a) + 1), 5n)); // A wakes: refused
      await guard.write(String(Number(b) + 1), 6n);
      expect(await guard.read(6n)).toBe('1');
      await staleError(guard.read(5n));
    });

    it('register records a fence without touching the value', async () => {
      const guard = await fresh();
      await guard.write('kept', 2n);
      await guard.register(3n);
      await staleError(guard.write('stale', 2n));
      expect(await guard.read(3n)).toBe('kept');
      await staleError(guard.register(2n));
    });

    it('readers: newer readers never refuse older ones; a newer writer refuses older readers; a newer reader refuses older writers', async () => {
      const guard = await fresh();
      await guard.write('v', 4n); // writer 4
      expect(await guard.read(shared(7n))).toBe('v'); // reader 7
      expect(await guard.read(shared(6n))).toBe('v'); // reader 6, still holding beside 7
      expect(await guard.fences()).toEqual({ fence: 4n, sharedFence: 7n });
      await staleError(guard.write('stale writer', 4n)); // writer 4's lease ended before reader 6
      await guard.write('w', 8n); // writer 8
      const error = await staleError(guard.read(shared(7n)));
      expect(error.highestFence).toBe(8n);
      expect(await guard.read({ fence: 9n, mode: 'exclusive' })).toBe('w');
    });

    it('concurrent read-modify-writes: every accepted one is kept, in fence order', async () => {
      const guard = await fresh();
      const fences = Array.from({ length: 30 }, (_, i) => BigInt(i + 1));
      fences.sort(() => Math.random() - 0.5);
      const accepted: string[] = [];
      await Promise.all(
        fences.map(async (fence) => {
          try {
            const list = JSON.parse((await guard.read(fence)) ?? '[]') as string[];
            await guard.write(JSON.stringify([...list, String(fence)]), fence);
            accepted.push(String(fence));
          } catch (error) {
            expect(error).toBeInstanceOf(StaleFenceError);
          }
        }),
      );
      expect(accepted.length).toBeGreaterThan(0);
      const final = JSON.parse((await guard.read(100n)) ?? '[]') as string[];
      expect([...final].sort()).toEqual([...accepted].sort());
      const asNumbers = final.map(Number);
      expect(asNumbers).toEqual([...asNumbers].sort((a, b) => a - b));
    });

    it('bad holders are refused with InvalidArgumentError naming the holder', async () => {
      const guard = await fresh();
      for (const bad of [-1n, 5 as unknown as bigint, { fence: 1 } as unknown as bigint]) {
        await expect(guard.read(bad)).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          option: 'holder',
        });
      }
    });
  });
}
