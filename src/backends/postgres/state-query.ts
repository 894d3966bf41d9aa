/**
 * Reading the holders of keys for `inspect` and `list`: the live holders of each row (by the same
 * `alive` rule the call function applies), in fence order, with the time each has left and the
 * number of live waiters, all on the database's clock.
 */
import type pg from 'pg';
import type { HolderInfo, LockInfo, LockMode } from '../../core/backend.js';
import type { SchemaObjects } from './schema.js';

/** One row of {@link stateQuery}. */
export interface StateRow {
  readonly key: string;
  readonly mode: string | null;
  readonly shared_limit: number | null;
  readonly tokens: string[];
  readonly fences: string[];
  readonly remaining: number[];
  readonly waiters: number;
}

/** The query for one key (`$1` is the key) or for every key starting with `$1` (`prefix`). */
export function stateQuery(o: SchemaObjects, by: 'key' | 'prefix'): pg.QueryConfig {
  const live = `FROM unnest(t.holders) h WHERE ${o.alive}(h, c.n) ORDER BY h.fence`;
  return {
    name: `distlock_state_${by}_${o.id}`,
    text: `SELECT t.key, t.mode, t.shared_limit,
  ARRAY(SELECT h.token ${live}) AS tokens,
  ARRAY(SELECT h.fence ${live}) AS fences,
  ARRAY(SELECT greatest(0, ceil(extract(epoch FROM h.expires_at - c.n) * 1000))::integer ${live}) AS remaining,
  (SELECT count(*) FROM unnest(t.waiters) w WHERE w.until > c.n)::integer AS waiters
FROM ${o.table} t, (SELECT clock_timestamp() AS n) c
WHERE ${by === 'key' ? 't.key = $1' : 'starts_with(t.key, $1)'}
ORDER BY t.key`,
  };
}

/** The row as the contract's {@link LockInfo}, or `null` when nobody holds the key. */
export function lockInfoOf(row: StateRow): LockInfo | null {
  const count = row.tokens.length;
  if (count === 0) return null;
  const mode: LockMode = row.mode === 's' ? 'shared' : 'exclusive';
  const holders: HolderInfo[] = row.tokens.map((token, i) => ({
    token,
    fence: BigInt(row.fences[i]!),
    remainingMs: row.remaining[i]!,
    mode,
  }));
  const newest = holders[count - 1]!;
  const limit = row.shared_limit === null || row.shared_limit === 0 ? Infinity : row.shared_limit;
  return {
    key: row.key,
    token: newest.token,
    fence: newest.fence,
    remainingMs: newest.remainingMs,
    waiters: row.waiters,
    mode,
    holders,
    ...(mode === 'shared' ? { limit } : {}),
  };
}
