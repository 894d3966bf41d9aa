/**
 * What each call does to a key's state: pure decisions, applied by the backend with one atomic
 * rename (`head-store.ts`). Who may hold beside whom is decided by the shared rules of
 * `core/kinds.ts`; this module adds what a store without a queue needs for them.
 *
 * Writer preference without a queue: a writer that waits for a *mixed* key (one a reader or a
 * semaphore permit has used) keeps an **intent** in the key's state: registered by its first
 * refused attempt, refreshed while it waits, removed when it gets the key or stops waiting, and
 * expiring {@link INTENT_TTL_MS} after its last refresh if its process dies. A shared request is
 * refused while another request's intent is live, so once a writer waits, readers that arrive
 * after it wait behind it. Writers ignore each other's intents: the files backend does not queue
 * (`fifo: false`), and the writers race for the key as mutex waiters always have.
 *
 * A reader that has to wait for a key not yet mixed marks it mixed: the writers already waiting
 * there see the change (a rename, so `fs.watch` wakes them) and register their intents.
 */
import type { ExtendResult, LockMode, ReleaseOutcome } from '../../core/backend.js';
import { canHold, checkLimit, EXCLUSIVE, type Claim } from '../../core/kinds.js';
import { liveState, type Holding, type KeyState } from './key-state.js';

/**
 * How long a waiting writer's intent outlives its last refresh: the longest a writer that died
 * while waiting keeps new readers out.
 */
export const INTENT_TTL_MS = 3_000;

/** A waiting writer refreshes its intent once less than this is left of it. */
export const INTENT_REFRESH_BELOW_MS = 2_000;

/** A decision: the caller's result, and the state to write for it (none: nothing changes). */
export interface Decision<T> {
  readonly result: T;
  readonly next?: KeyState;
  /** `next` records a new fence: it must be durable (with the `fsync` option). */
  readonly issuesFence?: boolean;
}

/** One attempt to take a key. */
export interface Attempt {
  readonly key: string;
  readonly token: string;
  readonly ttlMs: number;
  readonly claim: Claim;
  /** Part of a wait (a queued acquire): may register an intent or mark the key mixed. */
  readonly waiting: boolean;
}

/** What an attempt found. */
export type AttemptResult =
  | { readonly acquired: true; readonly fence: bigint; readonly startedAt: number }
  | {
      readonly acquired: false;
      /** Milliseconds until the soonest holder or intent in the way expires. */
      readonly retryAfterMs?: number;
      /** When this request's own intent expires, if it has one. */
      readonly intentExpiresAt?: number;
    };

function claimsOf(state: KeyState): Claim[] {
  return state.holders.map((h) =>
    h.mode === 'exclusive' ? EXCLUSIVE : { mode: 'shared', limit: state.limit },
  );
}

/**
 * Take the key if the rules let `attempt` hold now. `state.lastFence` must be known (the caller
 * reads the root's fence floor for a new key directory).
 * @throws LimitMismatchError for a shared request whose limit differs from the holders'.
 */
export function decideAcquire(
  stored: KeyState,
  now: number,
  attempt: Attempt,
): Decision<AttemptResult> {
  const state = liveState(stored, now);
  const { token, claim } = attempt;
  const holders = claimsOf(state);
  checkLimit(attempt.key, claim, holders);
  const others = state.intents.filter((i) => i.token !== token);
  const own = state.intents.find((i) => i.token === token);
  const ahead = claim.mode === 'shared' ? others.map(() => EXCLUSIVE) : [];
  if (canHold(holders, claim, ahead)) {
    const fence = (state.lastFence ?? 0n) + 1n;
    const holding: Holding = { token, fence, expiresAt: now + attempt.ttlMs, mode: claim.mode };
    const shared = claim.mode === 'shared';
    return {
      result: { acquired: true, fence, startedAt: now },
      issuesFence: true,
      next: {
        holders: [...state.holders, holding],
        intents: others,
        limit: shared ? claim.limit : state.limit,
        lastFence: fence,
        mixed: state.mixed || shared,
      },
    };
  }
  const inTheWay = [
    ...state.holders.map((h) => h.expiresAt),
    ...(claim.mode === 'shared' ? others.map((i) => i.expiresAt) : []),
  ];
  const retryAfterMs = inTheWay.length > 0 ? Math.max(0, Math.min(...inTheWay) - now) : 0;
  if (!attempt.waiting) return { result: { acquired: false, retryAfterMs } };
  if (claim.mode === 'shared') {
    return {
      result: { acquired: false, retryAfterMs },
      ...(state.mixed ? {} : { next: { ...state, mixed: true } }),
    };
  }
  if (!state.mixed) return { result: { acquired: false, retryAfterMs } };
  if (own && own.expiresAt - now >= INTENT_REFRESH_BELOW_MS) {
    return { result: { acquired: false, retryAfterMs, intentExpiresAt: own.expiresAt } };
  }
  const intentExpiresAt = now + INTENT_TTL_MS;
  return {
    result: { acquired: false, retryAfterMs, intentExpiresAt },
    next: { ...state, intents: [...others, { token, expiresAt: intentExpiresAt }] },
  };
}

/** The outcome for a token that holds nothing: `not-owner` while others hold the key. */
function noHolding(state: KeyState): 'expired' | 'not-owner' {
  return state.holders.length > 0 ? 'not-owner' : 'expired';
}

/** Reset the TTL of `token`'s holding. */
export function decideExtend(
  stored: KeyState,
  now: number,
  token: string,
  ttlMs: number,
): Decision<ExtendResult> {
  const state = liveState(stored, now);
  const holding = state.holders.find((h) => h.token === token);
  if (!holding) return { result: { extended: false, reason: noHolding(state) } };
  return {
    result: { extended: true },
    next: {
      ...state,
      holders: state.holders.map((h) => (h === holding ? { ...h, expiresAt: now + ttlMs } : h)),
    },
  };
}

/**
 * Release `token`'s holding. A token that only has an intent (a writer that stopped waiting, or the
 * core leaving a wait) loses the intent.
 */
export function decideRelease(
  stored: KeyState,
  now: number,
  token: string,
): Decision<ReleaseOutcome> {
  const state = liveState(stored, now);
  const holders = state.holders.filter((h) => h.token !== token);
  const intents = state.intents.filter((i) => i.token !== token);
  const released = holders.length < state.holders.length;
  const result = released ? 'released' : noHolding(state);
  if (!released && intents.length === state.intents.length) return { result };
  return { result, next: { ...state, holders, intents } };
}

/** Remove every holder (an operator breaking the lock); waiting writers keep their intents. */
export function decideForceRelease(stored: KeyState, now: number): Decision<boolean> {
  const state = liveState(stored, now);
  if (state.holders.length === 0) return { result: false };
  return { result: true, next: { ...state, holders: [] } };
}

/** The mode a key is held in now (`exclusive` if any exclusive holder). */
export function modeOf(holders: readonly Holding[]): LockMode {
  return holders.some((h) => h.mode === 'exclusive') ? 'exclusive' : 'shared';
}
