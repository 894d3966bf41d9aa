/**
 * A queued acquire: take the key if it is free, else join its FIFO queue in the lease table and
 * wait until a release (or a leave, or an expiry noticed by a poll) hands it over.
 *
 * How a waiter learns of its grant: the call function that grants it `pg_notify`s
 * `<fence> <grant ms> <token>`, and the backend's one `LISTEN` connection routes it here by token
 * (grant-listener.ts). The notification already says the waiter holds the key, with its fence: no
 * further round trip. Every waiter also polls now and then: its heartbeat (the entry of a waiter
 * that died expires and is skipped), the fallback for a missed notification (the `LISTEN`
 * connection was down: then it polls every `pollIntervalMs`), and the promotion of the queue when a
 * holder died without releasing (polled right when its TTL runs out).
 *
 * `startedAt` of a handed-off lease: each reply carries the database's clock when the call ran,
 * which is no earlier than the local time it was sent; so `sentAt + (grantMs - nowMs)` of the
 * latest reply is a local time no later than the grant, whatever the offset between the two
 * clocks (only differences of the database's clock are used), accurate to one round trip however
 * long the wait was.
 */
import type pg from 'pg';
import type { AcquireRequest, QueuedAcquireOptions } from '../../core/backend.js';
import { BackendUnavailableError, LimitMismatchError, LockClosedError } from '../../core/errors.js';
import type { CallReply, CallRunner } from './calls.js';
import type { GrantListener, GrantNotice, ListenerSubscriber } from './grant-listener.js';
import type { SessionConnections } from './session.js';

/**
 * Keys whose last acquire in this backend was not granted at once (bounded: forgotten wholesale
 * past a size). Their acquires and releases skip the fast path, which on a contended key would
 * only add a failed `UPDATE` (and a wait for the row) to the call function's work.
 */
export class ContendedKeys {
  readonly #keys = new Set<string>();

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** Remember how the last acquire of `key` went. */
  note(key: string, grantedAtOnce: boolean): void {
    if (grantedAtOnce) {
      this.#keys.delete(key);
      return;
    }
    if (this.#keys.size >= MAX_CONTENDED_KEYS) this.#keys.clear();
    this.#keys.add(key);
  }
}

/** Keys remembered as contended before the memory is reset. */
const MAX_CONTENDED_KEYS = 10_000;

/** A granted acquire, as the backend contract wants it. */
export interface Granted {
  readonly acquired: true;
  readonly fence: bigint;
  readonly startedAt?: number;
  readonly lost?: AbortSignal;
}

export interface QueueContext {
  readonly runner: CallRunner;
  readonly listener: GrantListener;
  /** Session mode's connections; absent in lease mode. */
  readonly sessions: SessionConnections | undefined;
  readonly queueEntryTtlMs: number;
  readonly pollIntervalMs: number;
  /** Keys whose last acquire here was not granted at once: they skip the fast paths. */
  readonly contended: ContendedKeys;
  /**
   * The backend's queued waits: `close()` aborts each (with `LockClosedError`) and awaits each
   * promise, so that every waiter has left its queue before connections close.
   */
  readonly waits: Map<WaitEvents, Promise<unknown>>;
  /** True once `close()` has begun. */
  readonly closing: () => boolean;
}

type WaitEvent = GrantNotice | 'poll' | 'abort' | 'up' | 'down';

/** What one wait reacts to: its grant notification, the listener's state, a timer, an abort. */
export class WaitEvents implements ListenerSubscriber {
  aborted = false;
  reason: unknown = undefined;
  #grant: GrantNotice | undefined;
  #connection: 'up' | 'down' | undefined;
  #resolve: ((event: WaitEvent) => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  onGrant(notice: GrantNotice): void {
    this.#grant = notice;
    this.#wake();
  }

  onConnection(up: boolean): void {
    this.#connection = up ? 'up' : 'down';
    this.#wake();
  }

  /** End the wait with `reason` (the first reason wins). */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#wake();
  }

  /** The next thing to act on, or `'poll'` after `delayMs`. */
  next(delayMs: number): Promise<WaitEvent> {
    const ready = this.#pending();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => this.#fire('poll'), delayMs);
      this.#timer.unref();
    });
  }

  #pending(): WaitEvent | undefined {
    if (this.aborted) return 'abort';
    if (this.#grant) {
      const grant = this.#grant;
      this.#grant = undefined;
      return grant;
    }
    if (this.#connection) {
      const change = this.#connection;
      this.#connection = undefined;
      return change;
    }
    return undefined;
  }

  #wake(): void {
    if (!this.#resolve) return;
    const event = this.#pending();
    if (event) this.#fire(event);
  }

  #fire(event: WaitEvent): void {
    const resolve = this.#resolve;
    if (!resolve) return;
    this.#resolve = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    resolve(event);
  }
}

function jittered(ms: number, spread = 0.5): number {
  return Math.max(1, Math.round(ms * (1 - spread * Math.random())));
}

/** Call `onAbort` when the wait is to end: through `options.onAbort` if given, else the signal. */
function onWaitEnd(options: QueuedAcquireOptions, onAbort: (reason: unknown) => void): () => void {
  if (options.onAbort) return options.onAbort(onAbort);
  const signal = options.signal;
  const listener = () => onAbort(signal.reason);
  if (signal.aborted) listener();
  else signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/** One request's calls, bound to its key and arguments. */
class Line {
  /** Session mode: the connection a queued request waits with (see `start`). */
  connection: pg.PoolClient | undefined;

  constructor(
    readonly context: QueueContext,
    readonly request: AcquireRequest,
  ) {}

  get args() {
    const { request, context } = this;
    return {
      token: request.token,
      ttlMs: request.ttlMs,
      mode: request.mode ?? 'exclusive',
      limit: request.limit ?? Infinity,
      queueMs: context.queueEntryTtlMs,
      fast: !context.contended.has(request.key),
    } as const;
  }

  step(operation: 'acquire' | 'poll'): Promise<CallReply> {
    return this.context.runner.call(operation, this.request.key, this.args);
  }

  /** The first step: in session mode on a connection of its own, tied to a direct grant. */
  async start(): Promise<{ reply: CallReply; lost?: AbortSignal }> {
    const sessions = this.context.sessions;
    if (!sessions) return { reply: await this.step('acquire') };
    const client = await sessions.take().catch((error: unknown) => {
      throw this.context.runner.error(error, 'acquire');
    });
    let reply: CallReply;
    try {
      reply = await this.context.runner.call(
        'acquire',
        this.request.key,
        { ...this.args, session: true },
        client,
      );
    } catch (error) {
      sessions.giveBack(client, false);
      throw error;
    }
    if (reply.code === 2) {
      // Queued: keep the connection for the wait, so that the grant is tied to it without
      // waiting for another (and waiters granted in order are claimed in order).
      this.connection = client;
      return { reply };
    }
    if (reply.code !== 1) {
      sessions.giveBack(client);
      return { reply };
    }
    return { reply, lost: sessions.hold(this.request.token, client) };
  }

  /** Give back the connection kept for the wait, if it was not tied to a grant. */
  giveBackConnection(): void {
    const client = this.connection;
    this.connection = undefined;
    if (client) this.context.sessions?.giveBack(client);
  }
}

/**
 * Take the key if it is free, else wait in its queue until granted; rejects with the abort's
 * reason after leaving the queue (and releasing a grant that raced the abort).
 */
export async function acquireInQueue(
  context: QueueContext,
  request: AcquireRequest,
  options: QueuedAcquireOptions,
): Promise<Granted> {
  const line = new Line(context, request);
  const events = new WaitEvents();
  const { listener } = context;
  // Subscribed before the request is sent, so that a grant notified at once is not missed.
  const unsubscribe = listener.subscribe(request.token, events);
  const heardFromStart = listener.up;
  let waiting: Promise<Granted> | undefined;
  try {
    const { reply, lost } = await line.start();
    // The store answered: from here on a failure happened mid-wait, and the core retries it.
    options.onQueued?.();
    context.contended.note(request.key, reply.code === 1);
    // Granted at once: the core's own send time, earlier than this call's, starts the lease.
    if (reply.code === 1) return granted(reply.fence, undefined, lost);
    if (reply.code === -2) throw mismatch(request, reply);
    listener.ensure();
    const stopListening = onWaitEnd(options, (reason) => events.abort(reason));
    waiting = waitInLine(line, events, reply, heardFromStart);
    context.waits.set(events, waiting);
    if (context.closing()) events.abort(new LockClosedError('postgres backend'));
    try {
      return await waiting;
    } finally {
      stopListening();
    }
  } finally {
    if (waiting) context.waits.delete(events);
    unsubscribe();
    line.giveBackConnection();
  }
}

function granted(fence: string | null, startedAt: number | undefined, lost?: AbortSignal): Granted {
  return {
    acquired: true,
    fence: BigInt(fence ?? 0),
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(lost ? { lost } : {}),
  };
}

/** The error for a shared request whose limit differs from the key's (call code -2). */
export function mismatch(request: AcquireRequest, reply: CallReply): LimitMismatchError {
  const held = reply.value === null || reply.value === 0 ? Infinity : reply.value;
  return new LimitMismatchError(request.key, request.limit ?? Infinity, held);
}

async function waitInLine(
  line: Line,
  events: WaitEvents,
  first: CallReply,
  heardFromStart: boolean,
): Promise<Granted> {
  const { context, request } = line;
  let anchor = first;
  const nextPollDelay = (retryAfterMs: number | null): number => {
    const heartbeat = context.queueEntryTtlMs / 3;
    const cadence = context.listener.up ? heartbeat : Math.min(heartbeat, context.pollIntervalMs);
    // A holder that never releases is noticed right when its TTL runs out.
    const atExpiry = retryAfterMs !== null ? retryAfterMs + jittered(20, 1) : cadence;
    return Math.min(jittered(cadence, 0.3), atExpiry);
  };
  // Not listening when the request was sent: a grant may have been missed, so poll at once.
  let pollDelay = heardFromStart ? nextPollDelay(first.value) : 0;
  try {
    for (;;) {
      const event = await events.next(pollDelay);
      if (event === 'abort') return await abandon(line, events.reason);
      if (event === 'up') {
        pollDelay = 0; // notifications sent while it was down are lost: look once
        continue;
      }
      if (event === 'down') {
        pollDelay = Math.min(pollDelay, jittered(context.pollIntervalMs));
        continue;
      }
      if (event !== 'poll') {
        const startedAt = anchor.sentAt + (event.grantMs - anchor.nowMs);
        return await claimed(line, event.fence, Math.min(startedAt, event.receivedAt));
      }
      let reply = await line.step('poll');
      // Our entry expired (we heartbeated too late): join again.
      if (reply.code === -1) reply = await line.step('acquire');
      if (events.aborted) return await abandon(line, events.reason);
      if (reply.code === -2) throw mismatch(request, reply);
      if (reply.code === 1) {
        // `value` is the grant's expiry: the grant itself was `ttlMs` before it.
        const grantMs = (reply.value ?? reply.nowMs) - request.ttlMs;
        return await claimed(line, reply.fence, reply.sentAt + Math.min(0, grantMs - reply.nowMs));
      }
      anchor = reply;
      pollDelay = nextPollDelay(reply.value);
    }
  } catch (error) {
    if (events.aborted) return await abandon(line, events.reason);
    // A failed step leaves the outcome unknown: leave (best effort) so that nothing stays queued.
    void leaveQueue(line);
    throw context.runner.error(error, 'acquire');
  }
}

/** A granted wait: in session mode, tie the grant to a connection of its own first. */
async function claimed(line: Line, fence: string | null, startedAt: number): Promise<Granted> {
  const { sessions, runner } = line.context;
  if (!sessions) return granted(fence, startedAt);
  const client = line.connection ?? (await sessions.take());
  line.connection = undefined;
  let reply: CallReply;
  try {
    reply = await runner.call('claim', line.request.key, { token: line.request.token }, client);
  } catch (error) {
    sessions.giveBack(client, false);
    throw error;
  }
  if (reply.code !== 1) {
    sessions.giveBack(client);
    throw new BackendUnavailableError(
      'the lock was granted but expired before this process could tie it to its connection',
    );
  }
  return granted(reply.fence, startedAt, sessions.hold(line.request.token, client));
}

async function abandon(line: Line, reason: unknown): Promise<never> {
  await leaveQueue(line);
  throw reason;
}

/** First and last delay between background attempts to leave the queue. */
const LEAVE_RETRY_FIRST_MS = 50;
const LEAVE_RETRY_MAX_MS = 1_000;

/**
 * Leave the queue for good (or give back a grant that raced the leave). If the call fails, keep
 * trying in the background until it gets through, the backend closes, or nothing of ours can be
 * left (the entry has expired and any grant to it has run out).
 */
async function leaveQueue(line: Line): Promise<void> {
  const { context, request } = line;
  const leave = () => context.runner.call('leave', request.key, { token: request.token });
  try {
    await leave();
    return;
  } catch {
    // Retried below.
  }
  const giveUpAt = Date.now() + request.ttlMs + context.queueEntryTtlMs;
  let delayMs = LEAVE_RETRY_FIRST_MS;
  const retry = (): void => {
    if (context.closing() || Date.now() > giveUpAt) return;
    leave().catch(() => {
      delayMs = Math.min(delayMs * 2, LEAVE_RETRY_MAX_MS);
      setTimeout(retry, delayMs).unref();
    });
  };
  setTimeout(retry, delayMs).unref();
}
