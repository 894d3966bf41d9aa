/**
 * Key layout of one lock. Every key starts with `<prefix>{<key>}` so that all of them share one
 * Redis Cluster hash tag (the text between the first `{` and the next `}`) and live in one slot,
 * which a Lua script touching several of them requires. Lock keys end with `}`; the other keys
 * add a suffix without `}`, so two different locks can never share a key.
 */
import { InvalidArgumentError } from '../../core/errors.js';

/** The Redis keys of one lock, in the order every script expects them as `KEYS`. */
export interface LockKeys {
  /** The lock itself: the holder's token, with the lease's TTL. */
  readonly lock: string;
  /** The fence counter (never expires). */
  readonly fence: string;
  /** The FIFO list of waiter ids. */
  readonly queue: string;
  /** The hash of waiter entries (id -> expiry, ttl, token). */
  readonly waiters: string;
}

export function lockKeys(prefix: string, key: string): LockKeys {
  if (key.length === 0 || key.startsWith('}')) {
    // `{}` is an empty hash tag: Redis would hash each whole key and scatter them over slots.
    throw new InvalidArgumentError('key', 'must not be empty or start with "}" on Redis');
  }
  const lock = `${prefix}{${key}}`;
  return { lock, fence: `${lock}:f`, queue: `${lock}:q`, waiters: `${lock}:w` };
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
