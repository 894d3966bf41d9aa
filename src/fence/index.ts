/**
 * Fence guards: the resource side of fencing. A lock alone cannot stop a holder that was paused
 * (a GC pause, a stopped VM, a grant that reached it late) from writing after its lease ended and
 * another holder took over; no lock service can, since the paused holder cannot know. What stops
 * it is the resource refusing an access whose fence is lower than one it has already seen. These
 * guards do that check and record the fence in one atomic step, and refuse a stale access with a
 * typed {@link StaleFenceError}:
 *
 * - {@link redisFence}: a value in a Redis hash, one Lua script per access (ioredis client);
 * - {@link postgresFence}: a row of your table, one `UPDATE` per access (`pg` Pool or Client);
 * - {@link fileFence}: a value in a local directory, one `rename()` per access.
 *
 * Every guard checks **reads as well as writes**, and a read records the reader's fence. With a
 * check on writes alone, updates are lost: holder A (fence 5) reads the balance and is paused; its
 * lease expires; B (fence 6) reads the same balance; A wakes and writes — accepted, since no fence
 * above 5 has been seen; B writes — accepted — and A's update is gone, although every write passed
 * the check. Once B's read records fence 6, A's write is refused. Where the read happens outside
 * the guarded store, call `register(lease)` before reading.
 *
 * **Read-write locks.** Every grant of a key, reader or writer, gets a fence greater than every
 * fence issued before it (see `core/kinds.ts`), but readers hold side by side, so a reader's fence
 * orders it only against writers. The guards therefore keep two numbers per resource — the
 * highest fence of an exclusive access (a mutex holder, a writer) and of a shared access (a reader,
 * a semaphore permit) — and pass a `Lease` (or `{ fence, mode }`) so that they know which:
 * - an exclusive access is refused below either number (any newer grant means its lease ended);
 * - a shared access is refused only below the exclusive number (a newer writer means its read
 *   lease ended), never because of a newer reader, and raises only the shared number.
 * A bare `bigint` fence is an exclusive access. The guards do not stop two holders of one
 * semaphore from writing at once: that is what a semaphore allows.
 *
 * @example
 * ```ts
 * import { redisFence, StaleFenceError } from 'distlock/fence';
 * const balance = redisFence(redis, 'balance:42');
 * await locks.withLock('account:42', async (lease) => {
 *   const cents = Number((await balance.read(lease)) ?? 0);
 *   await balance.write(String(cents + 500), lease); // StaleFenceError if a newer holder came in
 * });
 * ```
 * @packageDocumentation
 */
export { StaleFenceError } from './stale-fence-error.js';
export { accessOf, afterAccess, outranking, UNFENCED } from './rules.js';
export type { Access, FenceHolder, FenceState } from './rules.js';
export { redisFence, scriptCallerOf } from './redis.js';
export type { IoredisScriptClient, RedisFencedValue, ScriptCaller } from './redis.js';
export { fileFence } from './file.js';
export type { FileFenceOptions, FileFencedValue } from './file.js';
export { postgresFence } from './postgres.js';
export type {
  PostgresFenceOptions,
  PostgresFencedRow,
  PostgresQueryable,
  Row,
} from './postgres.js';
