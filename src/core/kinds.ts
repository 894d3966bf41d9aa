/**
 * The rules of the lock kinds, in one place: who may hold a key beside whom. Backends whose
 * decisions run in TypeScript (memory, files) call these functions; backends whose decisions run
 * in the store (a Redis script, etcd's revision order) implement the same rules there, and the
 * conformance suite checks every backend against them.
 *
 * A key has holders, each `exclusive` or `shared`:
 * - an exclusive request holds alone: no other holder of any mode (a mutex, a writer);
 * - a shared request holds beside other shared holders only, fewer than `limit` of them before it
 *   (a reader: no limit; a semaphore permit: the semaphore's limit);
 * - nobody passes a live waiter queued before it. On a FIFO backend that is the whole queue ahead;
 *   a backend without a queue keeps at least the exclusive waiters visible (an "intent"), so that
 *   once a writer waits, readers that arrive after it wait behind it (no writer starvation);
 * - every shared holder and waiter of a key uses one limit: a request with another is refused with
 *   `LimitMismatchError` (readers and a semaphore on one key, or a semaphore with two limits).
 *
 * Fences: every grant of a key, of either mode, gets a fence greater than every fence issued
 * before it for that key. A writer's fence is therefore greater than every earlier reader's and
 * writer's, and a reader's is greater than every writer's before it: a resource that remembers the
 * highest writer fence it has seen can refuse a reader that started before the latest writer.
 * Readers' fences order readers, but concurrent readers do not exclude each other.
 */
import type { LockMode } from './backend.js';
import { InvalidArgumentError, LimitMismatchError } from './errors.js';

/** The part of a holding or waiting request that the rules read. */
export interface Claim {
  readonly mode: LockMode;
  /** Shared claims: the key's limit (`Infinity` for readers). Ignored for exclusive claims. */
  readonly limit: number;
}

/** The exclusive claim (a mutex, a writer). */
export const EXCLUSIVE: Claim = Object.freeze({ mode: 'exclusive', limit: 1 });

/** A reader's claim: shared, no limit. */
export const READER: Claim = Object.freeze({ mode: 'shared', limit: Infinity });

/** The largest semaphore limit accepted (stores keep it as a 32-bit integer). */
export const MAX_LIMIT = 2_147_483_647;

/** A semaphore's claim with `limit` permits. */
export function permit(limit: number): Claim {
  return { mode: 'shared', limit };
}

/** The claim of a request as the contract carries it (`mode` and `limit` may be absent). */
export function claimOf(request: { readonly mode?: LockMode; readonly limit?: number }): Claim {
  if (request.mode !== 'shared') return EXCLUSIVE;
  return { mode: 'shared', limit: request.limit ?? Infinity };
}

/**
 * Whether `request` may hold now beside `holders` (the live ones), with `ahead` the live waiters
 * that must be served before it. Does not check limits: see {@link checkLimit}.
 */
export function canHold(
  holders: readonly Claim[],
  request: Claim,
  ahead: readonly Claim[] = [],
): boolean {
  if (ahead.length > 0) return false;
  if (request.mode === 'exclusive') return holders.length === 0;
  let shared = 0;
  for (const holder of holders) {
    if (holder.mode === 'exclusive') return false;
    shared += 1;
  }
  return shared < request.limit;
}

/**
 * Throw `LimitMismatchError` if `request` is shared and a shared holder or waiter of the key uses
 * another limit.
 */
export function checkLimit(key: string, request: Claim, others: Iterable<Claim>): void {
  if (request.mode !== 'shared') return;
  for (const other of others) {
    if (other.mode === 'shared' && other.limit !== request.limit) {
      throw new LimitMismatchError(key, request.limit, other.limit);
    }
  }
}

/**
 * The waiters at the head of a FIFO queue that may be granted now, in order: the longest prefix of
 * `queue` each of which can hold beside `holders` and the ones granted before it. A release can so
 * hand a key to a batch of readers, or to several semaphore waiters at once.
 */
export function grantable<T extends Claim>(holders: readonly Claim[], queue: readonly T[]): T[] {
  const granted: T[] = [];
  const holding = [...holders];
  for (const waiter of queue) {
    if (!canHold(holding, waiter)) break;
    granted.push(waiter);
    holding.push(waiter);
  }
  return granted;
}

/** A semaphore's limit: an integer from 1 to {@link MAX_LIMIT}. */
export function validateLimit(value: unknown, option = 'limit'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new InvalidArgumentError(
      option,
      `must be an integer from 1 to ${MAX_LIMIT}, got ${String(value)}`,
    );
  }
  return value;
}
