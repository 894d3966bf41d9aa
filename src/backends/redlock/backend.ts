/**
 * The Redlock backend: one lock held on a majority of N independent Redis masters (N odd, ≥ 3),
 * as redsync and the npm `redlock` package do, over the client layer of the Redis backend
 * (`RedisConnection`). Every operation is one parallel round to all nodes, each node's answer
 * bounded by the per-node timeout; fences take two more rounds (see `fences.ts`).
 *
 * The core owns waiting: a failed attempt clears its partial wins on every node before it
 * answers (no self-blocking), and `watch` wakes waiters on any node's release (pub/sub).
 */
import type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  ReleaseOutcome,
  Unwatch,
} from '../../core/backend.js';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { InvalidArgumentError, LockClosedError } from '../../core/errors.js';
import { driftMs } from '../../core/options.js';
import { IoredisConnection } from '../redis/ioredis/connection.js';
import { lockNameOf, scanPattern } from '../redis/keys.js';
import { issueFence, type FenceContext } from './fences.js';
import {
  REDLOCK_DEFAULTS,
  callTimeoutMs,
  resolveOptions,
  type RedlockBackendOptions,
  type ResolvedRedlockOptions,
} from './options.js';
import { ioredisNode, type NodeLink } from './node-link.js';
import { majorityView, type NodeCopy } from './majority-view.js';
import {
  count,
  failures,
  NodeTimeoutError,
  onlyTimeouts,
  round,
  unavailable,
  type Vote,
  type Votes,
} from './rounds.js';
import { ACQUIRE, EXTEND, FORCE_RELEASE, INSPECT, RELEASE } from './scripts.js';

const won = (reply: unknown) => Array.isArray(reply) && reply[0] === 1;

/** A node that answered an acquire with a refusal: it holds nothing of this attempt. */
const refused = (vote: Vote<unknown> | undefined) =>
  vote !== undefined && vote.ok && Array.isArray(vote.value) && vote.value[0] !== 1;

/** Waiters woken by a release try again after a random delay up to this long. */
const WAKE_JITTER_MS = 3;

/** Releases a watcher remembers, to be woken once per release (a few are in flight at once). */
const SEEN_RELEASES = 16;

/** The last `size` distinct strings added. */
class RecentSet {
  readonly #items: string[] = [];
  constructor(readonly size: number) {}

  /** Add `item`; false if it is already there. */
  add(item: string): boolean {
    if (this.#items.includes(item)) return false;
    this.#items.push(item);
    if (this.#items.length > this.size) this.#items.shift();
    return true;
  }
}

/** See {@link redlockBackend}. */
export class RedlockBackend implements LockBackend {
  readonly name = 'redlock';
  readonly capabilities: BackendCapabilities;
  /** Votes needed: a majority of the nodes. */
  readonly quorum: number;

  readonly #options: ResolvedRedlockOptions;
  readonly #nodes: readonly NodeLink[];
  readonly #fences: FenceContext;
  #closed: Promise<void> | undefined;

  /** @throws InvalidArgumentError for a bad option (e.g. an even number of nodes). */
  constructor(options: RedlockBackendOptions) {
    this.#options = resolveOptions(options);
    const connect = (client: Redis | undefined, url: string | undefined) =>
      new IoredisConnection({
        client,
        url,
        redisOptions: options.redisOptions,
        commandTimeoutMs: REDLOCK_DEFAULTS.commandTimeoutMs,
        maxBlockingConnections: 0,
      });
    if (options.clients) {
      for (const client of options.clients) {
        if ((client as { isCluster?: boolean } | null)?.isCluster) {
          throw new InvalidArgumentError(
            'clients',
            'must be standalone Redis clients, not a Cluster',
          );
        }
      }
    }
    const built: IoredisConnection[] = [];
    try {
      for (const client of options.clients ?? []) built.push(connect(client, undefined));
      for (const url of options.urls ?? []) built.push(connect(undefined, url));
    } catch (error) {
      for (const connection of built) void connection.close();
      throw error;
    }
    this.#nodes = built.map(ioredisNode);
    this.quorum = Math.floor(built.length / 2) + 1;
    this.#fences = {
      nodes: this.#nodes,
      quorum: this.quorum,
      counterKey: `${this.#options.prefix}fence`,
    };
    this.capabilities = Object.freeze({
      fencing: this.#options.fencing === 'quorum',
      notify: true,
      // Each node would have to keep the same queue, and no majority orders arrivals: see README.
      fifo: false,
      crossProcess: true,
      shared: false,
    });
  }

  async tryAcquire(request: AcquireRequest, options?: OperationOptions): Promise<AcquireResult> {
    this.#throwIfClosed();
    options?.signal?.throwIfAborted();
    const ttlMs = Math.ceil(request.ttlMs);
    const timeoutMs = callTimeoutMs(this.#options, ttlMs);
    const lock = this.#lockKey(request.key);
    const startedAt = Date.now();
    const votes = await round(
      this.#nodes,
      timeoutMs,
      (node, signal) =>
        node.run(ACQUIRE, [lock], [request.token, ttlMs, this.#options.restartGuardSeconds], {
          signal,
        }),
      (votes) => this.#decided(votes, won),
    );
    const wins = count(votes, won);
    if (wins >= this.quorum) {
      let fence = 0n;
      try {
        if (this.capabilities.fencing)
          fence = await issueFence(this.#fences, lock, request.token, timeoutMs);
      } catch (error) {
        await this.#releaseEverywhere(lock, request.token);
        if (!(error instanceof NodeTimeoutError)) throw error;
        return { acquired: false, retryAfterMs: Math.floor(Math.random() * timeoutMs) };
      }
      // Held only while valid: the copies expire `ttlMs` after they were sent, at the earliest.
      if (Date.now() < startedAt + ttlMs - driftMs(ttlMs, this.#options.driftFactor)) {
        if (options?.signal?.aborted) {
          await this.#releaseEverywhere(lock, request.token);
          throw options.signal.reason;
        }
        return { acquired: true, fence, validityMs: ttlMs, startedAt };
      }
    }
    // Not held: give back every partial win now (also on nodes that did not answer in time: the
    // release follows the acquire on the same connection), so that no attempt blocks the next.
    // Nodes that refused (held by another token, or the restart guard) have nothing to give back.
    await this.#releaseEverywhere(lock, request.token, false, (i) => !refused(votes[i]));
    if (wins < this.quorum && wins + failures(votes) >= this.quorum) {
      // Nodes that are up but slow (a loaded host, a stalled node) make this attempt fail, not
      // the store unreachable: try again soon. Nodes that cannot be reached at all fail it.
      if (!onlyTimeouts(votes)) throw unavailable('acquire', votes, this.quorum);
      return { acquired: false, retryAfterMs: Math.floor(Math.random() * timeoutMs) };
    }
    const retryAfterMs = this.#retryAfter(votes, wins, Date.now() - startedAt);
    return retryAfterMs === undefined ? { acquired: false } : { acquired: false, retryAfterMs };
  }

  async extend(lease: LeaseRef, ttlMs: number, _options?: OperationOptions): Promise<ExtendResult> {
    this.#throwIfClosed();
    const ttl = Math.ceil(ttlMs);
    const lock = this.#lockKey(lease.key);
    const startedAt = Date.now();
    const votes = await round(
      this.#nodes,
      callTimeoutMs(this.#options, ttl),
      (node, signal) => node.run(EXTEND, [lock], [lease.token, ttl], { signal }),
      (votes) => this.#decided(votes, (reply) => reply === 1),
    );
    const extended = count(votes, (reply) => reply === 1);
    const validityMs = startedAt + ttl - driftMs(ttl, this.#options.driftFactor) - Date.now();
    if (extended >= this.quorum && validityMs > 0) {
      // Measured from now, which is later than the core's send time: on the safe side.
      return { extended: true, validityMs: validityMs + driftMs(ttl, this.#options.driftFactor) };
    }
    if (extended < this.quorum && extended + failures(votes) >= this.quorum) {
      // Unknown, not lost: the core retries until the lease's local deadline.
      throw unavailable('extend', votes, this.quorum);
    }
    // Lost: free the copies this token still has, so they block nobody until their TTL.
    void this.#releaseEverywhere(lock, lease.token, true);
    const others = count(votes, (reply) => reply === -1);
    return { extended: false, reason: others > 0 ? 'not-owner' : 'expired' };
  }

  async release(lease: LeaseRef, _options?: OperationOptions): Promise<ReleaseOutcome> {
    this.#throwIfClosed();
    const votes = await this.#releaseEverywhere(this.#lockKey(lease.key), lease.token, true);
    if (count(votes, (reply) => reply === 1) > 0) return 'released';
    if (failures(votes) === votes.length) throw unavailable('release', votes, 1);
    return count(votes, (reply) => reply === -1) >= this.quorum ? 'not-owner' : 'expired';
  }

  /** The holder a majority of nodes agrees on, or null (none, or no majority agrees). */
  async inspect(key: string, _options?: OperationOptions): Promise<LockInfo | null> {
    this.#throwIfClosed();
    // A read for operators, not a vote: no validity to protect, so the longer command timeout
    // (a loaded host answers a node in more than the voting timeout without being down).
    const votes = await round(this.#nodes, REDLOCK_DEFAULTS.commandTimeoutMs, (node, signal) =>
      node.run(INSPECT, [this.#lockKey(key)], [], { signal }),
    );
    if (votes.length - failures(votes) < this.quorum)
      throw unavailable('inspect', votes, this.quorum);
    const copies: NodeCopy[] = [];
    for (const vote of votes) {
      if (!vote?.ok || !Array.isArray(vote.value)) continue;
      const [token, fence, pttl] = vote.value as [string, string, number];
      copies.push({ token, fence: BigInt(fence), remainingMs: Number(pttl) });
    }
    return majorityView(key, copies, this.quorum);
  }

  /** Holders (by majority view) of every lock whose key starts with `prefix`. */
  async list(prefix: string, options?: OperationOptions): Promise<LockInfo[]> {
    this.#throwIfClosed();
    const pattern = scanPattern(this.#options.prefix, prefix);
    const votes = await round(this.#nodes, REDLOCK_DEFAULTS.commandTimeoutMs, (node, signal) =>
      node.scan(pattern, signal),
    );
    if (votes.length - failures(votes) < this.quorum) throw unavailable('list', votes, this.quorum);
    const names = new Set<string>();
    for (const vote of votes) {
      if (!vote?.ok) continue;
      for (const redisKey of vote.value) {
        const name = lockNameOf(this.#options.prefix, redisKey);
        if (name !== undefined && name.startsWith(prefix)) names.add(name);
      }
    }
    const infos = await Promise.all([...names].sort().map((name) => this.inspect(name, options)));
    return infos.filter((info): info is LockInfo => info !== null);
  }

  /** Delete the lock on every node that answers, whoever holds it. */
  async forceRelease(key: string, _options?: OperationOptions): Promise<boolean> {
    this.#throwIfClosed();
    const lock = this.#lockKey(key);
    const marker = `force:${randomUUID()}`;
    const votes = await round(this.#nodes, REDLOCK_DEFAULTS.commandTimeoutMs, (node, signal) =>
      node.run(FORCE_RELEASE, [lock], [`${lock}:released`, marker], { signal }),
    );
    if (failures(votes) === votes.length) throw unavailable('forceRelease', votes, 1);
    return count(votes, (reply) => reply === 1) > 0;
  }

  /**
   * Wake `onChange` once per release, on the first node that announces it (the others announce
   * the same token: waking again would only start more attempts that split the votes).
   * Subscribing is best effort and waits at most one per-node timeout (a node that is down just
   * sends no wake-ups; the core also polls).
   */
  async watch(key: string, onChange: () => void, _options?: OperationOptions): Promise<Unwatch> {
    this.#throwIfClosed();
    const channel = `${this.#lockKey(key)}:released`;
    const seen = new RecentSet(SEEN_RELEASES);
    const onRelease = (token: string) => {
      if (!seen.add(token)) return;
      // Every waiter hears the release at about the same moment, always in the same order (that
      // of their connections): without a random delay the first one in that order would win
      // every time, and the others, all at once, would split the votes.
      const timer = setTimeout(onChange, Math.random() * WAKE_JITTER_MS);
      timer.unref?.();
    };
    const subscribed: (() => Promise<void>)[] = [];
    let stopped = false;
    const attempts = this.#nodes.map((node) =>
      node.connection.subscribe?.(channel, onRelease).then(
        (unsubscribe) => {
          if (stopped) void unsubscribe().catch(() => undefined);
          else subscribed.push(unsubscribe);
        },
        () => undefined,
      ),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(attempts),
      new Promise((resolve) => (timer = setTimeout(resolve, this.#options.nodeTimeoutMs))),
    ]);
    clearTimeout(timer);
    return async () => {
      stopped = true;
      await Promise.allSettled(subscribed.splice(0).map((unsubscribe) => unsubscribe()));
    };
  }

  /** Close every node's connections (clients passed in stay open). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= Promise.allSettled(this.#nodes.map((node) => node.connection.close())).then(
      () => undefined,
    );
    return this.#closed;
  }

  /** A round is decided once a quorum voted yes, or too many voted no (or failed) for one. */
  #decided(votes: Votes<unknown>, yes: (reply: unknown) => boolean): boolean {
    let ayes = 0;
    let others = 0;
    for (const vote of votes) {
      if (vote === undefined) continue;
      if (vote.ok && yes(vote.value)) ayes += 1;
      else others += 1;
    }
    return ayes >= this.quorum || others > votes.length - this.quorum;
  }

  /**
   * Release `token`'s copies on every node, waiting for each at most one per-node timeout;
   * `announce` wakes waiters (a real release, not the cleanup of a failed attempt).
   */
  #releaseEverywhere(
    lock: string,
    token: string,
    announce = false,
    needed: (index: number) => boolean = () => true,
  ): Promise<Votes<unknown>> {
    const args = [token, `${lock}:released`, announce ? '1' : '0'];
    return round(this.#nodes, this.#options.nodeTimeoutMs, (node, signal, index) =>
      needed(index) ? node.run(RELEASE, [lock], args, { signal }) : Promise.resolve(0),
    );
  }

  /**
   * When to try again after a lost vote. Held by one token on a quorum: when enough of its copies
   * expire for a quorum to be free (by the nodes' PTTLs). Otherwise nobody holds it: contenders
   * split the votes (each cleared its wins), or stale copies linger on a minority; then a short
   * random delay (up to twice this attempt's duration) spreads the next attempts apart, instead
   * of the backoff that grows with each attempt.
   */
  #retryAfter(votes: Votes<unknown>, free: number, attemptMs: number): number | undefined {
    const held: number[] = [];
    const copies = new Map<string, number>();
    for (const vote of votes) {
      if (vote?.ok && Array.isArray(vote.value) && vote.value[0] === 0) {
        const pttl = Number(vote.value[1]);
        if (pttl >= 0) held.push(pttl);
        const holder = String(vote.value[2]);
        copies.set(holder, (copies.get(holder) ?? 0) + 1);
      }
    }
    // Nodes that failed or did not answer (yet) might still be any token's.
    const unanswered = votes.length - count(votes, () => true);
    const largest = Math.max(0, ...copies.values());
    if (largest + unanswered < this.quorum) {
      return Math.floor(Math.random() * 2 * Math.max(1, attemptMs));
    }
    held.sort((a, b) => a - b);
    return held[this.quorum - free - 1];
  }

  #lockKey(key: string): string {
    return `${this.#options.prefix}{${key}}`;
  }

  #throwIfClosed(): void {
    if (this.#closed) throw new LockClosedError('redlock backend');
  }
}
