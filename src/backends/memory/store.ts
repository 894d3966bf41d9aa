/**
 * The state behind memory backends: every key's holders and FIFO queue of waiters, in one
 * process's memory. Several backends can share one store, so that each simulated client gets its
 * own backend (and its own `close`) over one set of locks.
 *
 * Who may hold beside whom is decided by the shared rules of `core/kinds.ts`: an exclusive holder
 * alone, shared holders up to their limit, and nobody passes a waiter queued before it. A release
 * or an expiry hands the key to the longest waiters that can hold it (a batch of readers, several
 * semaphore waiters, or one writer).
 *
 * Fences come from one counter for the whole store: every grant takes the next value, so a key's
 * fences strictly increase (they are a subsequence of the counter) while the state stays bounded —
 * a key with no holder and no waiter leaves nothing behind.
 */
import type {
  AcquireRequest,
  AcquireResult,
  HolderInfo,
  LockInfo,
  LockMode,
  ReleaseOutcome,
} from '../../core/backend.js';
import { canHold, checkLimit, claimOf, grantable, type Claim } from '../../core/kinds.js';

/** One live holding of a key. */
export interface Holding extends Claim {
  readonly token: string;
  readonly fence: bigint;
  expiresAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A queued request, granted by the store when its turn comes. */
export interface Waiter extends Claim {
  readonly request: AcquireRequest;
  readonly grant: (result: AcquireResult & { acquired: true }) => void;
}

/** A key's holders (by token) and waiters (in arrival order). */
interface KeyState {
  readonly holders: Map<string, Holding>;
  readonly queue: Waiter[];
}

/** What an attempt found when the key was not free for it. */
export type Refusal = { readonly acquired: false; readonly retryAfterMs?: number };

export class MemoryStore {
  readonly #keys = new Map<string, KeyState>();
  readonly #watchers = new Map<string, Set<() => void>>();
  /** The last fence issued, by any key. */
  #fence = 0n;

  /**
   * Take `key` for `request` if the rules let it hold now; otherwise say how long until the
   * soonest holder in its way expires.
   * @throws LimitMismatchError for a shared request whose limit differs from the key's.
   */
  tryTake(request: AcquireRequest): (AcquireResult & { acquired: true }) | Refusal {
    const claim = claimOf(request);
    const state = this.#live(request.key);
    if (state) {
      checkLimit(request.key, claim, [...state.holders.values(), ...state.queue]);
      if (!canHold([...state.holders.values()], claim, state.queue)) {
        return { acquired: false, retryAfterMs: soonestExpiry(state) };
      }
    }
    return { acquired: true, fence: this.#take(request.key, request, claim) };
  }

  /** Queue `waiter` behind everyone on `key`; returns a function that leaves the queue. */
  enqueue(key: string, waiter: Waiter): () => void {
    const state = this.#state(key);
    state.queue.push(waiter);
    return () => {
      const index = state.queue.indexOf(waiter);
      if (index < 0) return;
      state.queue.splice(index, 1);
      // A waiter that leaves may have been what held back the ones behind it (a writer before readers).
      this.#promote(key, state);
    };
  }

  /** Reset the TTL of `token`'s holding; the outcome when it holds nothing. */
  extend(key: string, token: string, ttlMs: number): 'extended' | 'expired' | 'not-owner' {
    const state = this.#live(key);
    const holding = state?.holders.get(token);
    if (!state || !holding) return state && state.holders.size > 0 ? 'not-owner' : 'expired';
    this.#setTtl(key, holding, ttlMs);
    return 'extended';
  }

  release(key: string, token: string): ReleaseOutcome {
    const state = this.#live(key);
    const holding = state?.holders.get(token);
    if (!state || !holding) return state && state.holders.size > 0 ? 'not-owner' : 'expired';
    this.#drop(key, state, holding);
    return 'released';
  }

  /** Remove every holder of `key`. */
  forceRelease(key: string): boolean {
    const state = this.#live(key);
    if (!state || state.holders.size === 0) return false;
    for (const holding of [...state.holders.values()]) this.#drop(key, state, holding);
    return true;
  }

  info(key: string): LockInfo | null {
    const state = this.#live(key);
    if (!state || state.holders.size === 0) return null;
    const now = Date.now();
    const holders: HolderInfo[] = [...state.holders.values()]
      .sort((a, b) => (a.fence < b.fence ? -1 : 1))
      .map((h) => ({
        token: h.token,
        fence: h.fence,
        remainingMs: Math.max(0, h.expiresAt - now),
        mode: h.mode,
      }));
    const newest = holders[holders.length - 1]!;
    const mode: LockMode = newest.mode;
    const first = state.holders.values().next().value as Holding;
    return {
      key,
      token: newest.token,
      fence: newest.fence,
      remainingMs: newest.remainingMs,
      waiters: state.queue.length,
      mode,
      holders,
      ...(mode === 'shared' ? { limit: first.limit } : {}),
    };
  }

  /** Keys that have holders now. */
  keys(): string[] {
    return [...this.#keys.keys()].filter((key) => (this.#live(key)?.holders.size ?? 0) > 0);
  }

  /** How many keys the store keeps state for (holders or waiters): 0 once every key is free. */
  get size(): number {
    return this.#keys.size;
  }

  queueLength(key: string): number {
    return this.#keys.get(key)?.queue.length ?? 0;
  }

  watch(key: string, onChange: () => void): () => void {
    let set = this.#watchers.get(key);
    if (!set) this.#watchers.set(key, (set = new Set()));
    const watcher = () => onChange();
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0) this.#watchers.delete(key);
    };
  }

  /** The key's state with expired holders dropped (and the queue served), or undefined if none. */
  #live(key: string): KeyState | undefined {
    const state = this.#keys.get(key);
    if (!state) return undefined;
    const now = Date.now();
    let dropped = false;
    for (const holding of state.holders.values()) {
      if (holding.expiresAt <= now) {
        clearTimeout(holding.timer);
        state.holders.delete(holding.token);
        dropped = true;
      }
    }
    if (dropped) this.#changed(key, state);
    return this.#keys.get(key);
  }

  #state(key: string): KeyState {
    let state = this.#keys.get(key);
    if (!state) this.#keys.set(key, (state = { holders: new Map(), queue: [] }));
    return state;
  }

  #take(key: string, request: AcquireRequest, claim: Claim): bigint {
    this.#fence += 1n;
    const holding: Holding = {
      token: request.token,
      fence: this.#fence,
      mode: claim.mode,
      limit: claim.limit,
      expiresAt: 0,
      timer: undefined,
    };
    this.#state(key).holders.set(request.token, holding);
    this.#setTtl(key, holding, request.ttlMs);
    return holding.fence;
  }

  #setTtl(key: string, holding: Holding, ttlMs: number): void {
    clearTimeout(holding.timer);
    holding.expiresAt = Date.now() + ttlMs;
    holding.timer = setTimeout(() => {
      const state = this.#keys.get(key);
      if (state?.holders.get(holding.token) === holding) this.#drop(key, state, holding);
    }, ttlMs);
    holding.timer.unref?.();
  }

  #drop(key: string, state: KeyState, holding: Holding): void {
    clearTimeout(holding.timer);
    state.holders.delete(holding.token);
    this.#changed(key, state);
  }

  /** After holders left: serve the queue, forget an empty key, tell the watchers. */
  #changed(key: string, state: KeyState): void {
    this.#promote(key, state);
    for (const watcher of this.#watchers.get(key) ?? []) queueMicrotask(watcher);
  }

  /** Grant the longest waiters that can hold now; forget the key once nothing is left of it. */
  #promote(key: string, state: KeyState): void {
    for (const waiter of grantable([...state.holders.values()], state.queue)) {
      state.queue.shift();
      const startedAt = Date.now();
      const fence = this.#take(key, waiter.request, waiter);
      waiter.grant({ acquired: true, fence, startedAt });
    }
    if (state.holders.size === 0 && state.queue.length === 0) this.#keys.delete(key);
  }
}

/** Milliseconds until the soonest holder of a key expires. */
function soonestExpiry(state: KeyState): number | undefined {
  let soonest = Infinity;
  for (const holding of state.holders.values()) soonest = Math.min(soonest, holding.expiresAt);
  return soonest === Infinity ? undefined : Math.max(0, soonest - Date.now());
}
