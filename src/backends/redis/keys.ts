/**
 * Key layout. Every key of one lock starts with `<prefix>{<key>}`, so that all of them share one
 * Redis Cluster hash tag (the text between the first `{` and the next `}`) and live in one slot,
 * which a Lua script touching several of them requires. Lock keys end with `}`; the other keys of
 * a lock add a suffix without `}`, so two different locks can never share a key:
 *
 * - `<prefix>{<key>}` the holding: `<token>\xff<fence>` for an exclusive holder, `\xff<limit>`
 *   while shared holders hold it (a byte no token can contain, as no UTF-8 string does);
 * - `…:s` shared holders (sorted set, token -> expiry), `…:h` their fences (hash);
 * - `…:q` the FIFO queue of waiter ids, `…:w` the waiters' entries, `…:n:<id>` a waiter's notify
 *   list (see `scripts/common.lua.ts`);
 * - `…:f` a per-lock fence counter left by an earlier version, folded into its slot's counter at
 *   the lock's next grant and deleted.
 *
 * **Fences: one counter per Cluster slot.** Fences must outlive leases (a new holder's fence must
 * exceed every earlier one of the key), so their state has no TTL. One counter per lock key grew
 * with every key ever locked; instead, each of the 16,384 Cluster slots has one counter,
 * `<prefix>fences{<tag>}`, whose hash tag is a short string chosen to hash to that slot. Every
 * grant of a lock `INCR`s the counter of the lock's slot, inside the same script as the grant.
 *
 * Why a lock's fences still strictly increase: a key always hashes to the same slot, so every
 * grant of it increments the same counter; that counter is never decremented, reset or expired
 * (only ever `INCR`ed, or raised to a legacy per-lock value, see above), and each grant takes the
 * value its own `INCR` returned. The fences of one lock are therefore a strictly increasing
 * subsequence of its slot's counter (other locks of the slot take the values in between). The
 * counter shares the lock's slot, so on Redis Cluster it moves with the slot when the slot is
 * resharded (`MIGRATE` moves all of a slot's keys), and a script can touch both. The state is
 * bounded: at most 16,384 counters per prefix, whatever the number of locks. On a standalone
 * Redis the same layout is used.
 *
 * The slot-to-tag table is part of the storage format: every process must find the same counter
 * for a slot. Tag of slot s: the first base-36 number `n.toString(36)` (n = 0, 1, 2, …) whose
 * CRC16 slot is s; it is built lazily, as far as needed (all 16,384 after ~88k candidates).
 */
import calculateSlot from 'cluster-key-slot';
import { InvalidArgumentError } from '../../core/errors.js';

/** The Redis keys of one lock, in the order every script expects them as `KEYS`. */
export interface LockKeys {
  /** The lock itself: its holder (or the shared marker), with the holding's TTL. */
  readonly lock: string;
  /** The fence counter of the lock's slot (never expires; see the module doc). */
  readonly fence: string;
  /** The FIFO list of waiter ids. */
  readonly queue: string;
  /** The hash of waiter entries (id -> expiry, ttl, mode, token). */
  readonly waiters: string;
}

/** Number of Redis Cluster hash slots. */
const SLOTS = 16_384;

/** The tag of each slot found so far, and the next candidate to try. */
const slotTags: (string | undefined)[] = new Array<string | undefined>(SLOTS);
let nextCandidate = 0;

/** The hash tag whose keys live in `slot` (see the module doc; deterministic). */
export function slotTag(slot: number): string {
  let tag = slotTags[slot];
  while (tag === undefined) {
    const candidate = (nextCandidate++).toString(36);
    const found = calculateSlot(candidate);
    slotTags[found] ??= candidate;
    tag = slotTags[slot];
  }
  return tag;
}

/** The fence counter of the slot `redisKey` lives in. */
export function fenceCounterKey(prefix: string, redisKey: string): string {
  return `${prefix}fences{${slotTag(calculateSlot(redisKey))}}`;
}

/** The Redis keys of lock `key` under `prefix`. @throws InvalidArgumentError for a key Redis Cluster would scatter. */
export function lockKeys(prefix: string, key: string): LockKeys {
  if (key.length === 0 || key.startsWith('}')) {
    // `{}` is an empty hash tag: Redis would hash each whole key and scatter them over slots.
    throw new InvalidArgumentError('key', 'must not be empty or start with "}" on Redis');
  }
  const lock = `${prefix}{${key}}`;
  return {
    lock,
    fence: fenceCounterKey(prefix, lock),
    queue: `${lock}:q`,
    waiters: `${lock}:w`,
  };
}

/** The notify list a queued waiter blocks on (same hash tag as the lock). */
export function notifyKey(keys: LockKeys, waiterId: string): string {
  return `${keys.lock}:n:${waiterId}`;
}

/** The `SCAN MATCH` pattern of every key whose lock name starts with `keyPrefix`. */
export function scanPattern(prefix: string, keyPrefix: string): string {
  return `${escapeGlob(prefix)}\\{${escapeGlob(keyPrefix)}*`;
}

/** The lock name of a lock key found by `SCAN`, or undefined for the other keys of a lock. */
export function lockNameOf(prefix: string, redisKey: string): string | undefined {
  if (!redisKey.startsWith(`${prefix}{`) || !redisKey.endsWith('}')) return undefined;
  return redisKey.slice(prefix.length + 1, -1);
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\{}^-]/g, (c) => `\\${c}`);
}
