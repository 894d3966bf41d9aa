/**
 * Everything the command prints: one-line errors on stderr (secrets redacted), and lock
 * descriptions as human text or JSON on stdout.
 */
import { redactSecrets } from '../backend-url.js';
import type { LockInfo } from '../core/backend.js';

/** How many characters of a holder's token are shown; enough to tell holders apart. */
export const TOKEN_PREFIX_LENGTH = 8;

/** Secrets known to this process (the backend URL's password), scrubbed from every message. */
const knownSecrets = new Set<string>();

/** Never print `secret`, even where it appears outside a URL. Ignores very short values. */
export function addSecret(secret: string): void {
  if (secret.length >= 3) knownSecrets.add(secret);
}

/** `text` with every URL password and every known secret replaced by `***`. */
export function scrub(text: string): string {
  let result = redactSecrets(text);
  for (const secret of knownSecrets) result = result.split(secret).join('***');
  return result;
}

/** Write one line to stderr, prefixed with `distlock:`, with any secret redacted. */
export function printError(message: string): void {
  process.stderr.write(`distlock: ${scrub(message).replace(/\s*\n\s*/g, ' ')}\n`);
}

/** One holder of a lock as `status --json` and `list --json` print it. */
export interface HolderJson {
  /** The first characters of the holder's token (the full token would let anyone release it). */
  readonly tokenPrefix: string;
  /** The holder's fencing token, as a decimal string (it may exceed JSON's safe integers). */
  readonly fence: string;
  /** Milliseconds until the lease expires unless renewed; `null` when the store cannot tell. */
  readonly remainingMs: number | null;
}

/** A lock as `status --json` and `list --json` print it. */
export interface LockJson {
  readonly key: string;
  readonly held: boolean;
  /** `exclusive` (a mutex or writer) or `shared` (readers, or a semaphore's permits). */
  readonly mode?: 'exclusive' | 'shared';
  /** Shared keys: their limit, `null` for readers (no limit). */
  readonly limit?: number | null;
  /** The holder (of a shared key, the newest one): see {@link HolderJson}. */
  readonly tokenPrefix?: string;
  readonly fence?: string;
  readonly remainingMs?: number | null;
  /** Shared keys: every holder, in fence order. */
  readonly holders?: readonly HolderJson[];
  /** Queued waiters, where the store keeps a queue. */
  readonly waiters?: number;
}

/** The JSON form of a lock; `info === null` means the key is free. */
export function lockToJson(key: string, info: LockInfo | null): LockJson {
  if (info === null) return { key, held: false };
  const mode = info.mode ?? 'exclusive';
  const holderOf = (holder: { token: string; fence: bigint; remainingMs: number | null }) => ({
    tokenPrefix: holder.token.slice(0, TOKEN_PREFIX_LENGTH),
    fence: holder.fence.toString(),
    remainingMs: holder.remainingMs,
  });
  return {
    key: info.key,
    held: true,
    mode,
    ...(mode === 'shared'
      ? { limit: info.limit === undefined || info.limit === Infinity ? null : info.limit }
      : {}),
    ...holderOf(info),
    ...(mode === 'shared' && info.holders ? { holders: info.holders.map(holderOf) } : {}),
    ...(info.waiters === undefined ? {} : { waiters: info.waiters }),
  };
}

/** `1.2s`, `45s`, `3m05s`, `2h10m`: a time left, short enough for a table. */
export function formatRemaining(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return 'unknown';
  if (ms < 0) return 'expired';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

/** How a held lock is held, for the table: `exclusive`, `shared`, or `shared (limit 3)`. */
function modeCell(lock: LockJson): string {
  if (lock.mode !== 'shared') return 'exclusive';
  return lock.limit === null || lock.limit === undefined
    ? 'shared'
    : `shared (limit ${lock.limit})`;
}

/** Table rows (with a header) for `list` and `status`: one row per holder. */
export function lockRows(locks: readonly LockJson[]): string[][] {
  const rows = [['KEY', 'MODE', 'TOKEN', 'FENCE', 'TIME LEFT']];
  for (const lock of locks) {
    if (!lock.held) {
      rows.push([lock.key, '-', '-', '-', 'free']);
      continue;
    }
    const holders = lock.holders ?? [
      {
        tokenPrefix: lock.tokenPrefix ?? '',
        fence: lock.fence ?? '',
        remainingMs: lock.remainingMs ?? null,
      },
    ];
    holders.forEach((holder, i) => {
      const waiting = i === holders.length - 1 && lock.waiters ? ` (${lock.waiters} waiting)` : '';
      rows.push([
        lock.key,
        modeCell(lock),
        `${holder.tokenPrefix}…`,
        holder.fence,
        formatRemaining(holder.remainingMs) + waiting,
      ]);
    });
  }
  return rows;
}

/** Print `value` as JSON on stdout (bigints as decimal strings). */
export function printJson(value: unknown): void {
  process.stdout.write(
    `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
  );
}
