/**
 * A queued acquire: join the lock's FIFO queue in Redis and wait until the release script hands
 * the lock over.
 *
 * How a waiter learns of its grant: a blocking list pop. The release script (or any script that
 * finds the lock free) grants the lock to the longest live waiter and `RPUSH`es
 * `g|<fence>|<grantServerMs>` onto that waiter's own list, which the waiter is `BLPOP`ing on a
 * dedicated connection. Chosen over pub/sub because:
 * - nothing is lost: the grant waits in the list even if the `BLPOP` is not there yet (between
 *   joining the queue and blocking, or after a reconnect); a pub/sub message published before
 *   the `SUBSCRIBE` lands is gone, which would need an extra round trip or a poll to close;
 * - only the new holder wakes (no herd of subscribers racing), and it learns within one one-way
 *   trip that it already holds the lock, with its fence: no further round trip;
 * - it works unchanged on Redis Cluster (the list shares the lock's hash tag), where `PUBLISH`
 *   is broadcast to every node.
 * The cost is one connection per waiter queued at the same time in this process, pooled and
 * capped (`maxBlockingConnections`); waiters beyond the cap fall back to jittered polling. On a
 * key that was contended last time, the enqueue script and the `BLPOP` go out together, corked
 * into one write on the blocking connection (a system call is most of a waiter's client cost).
 *
 * Every waiter also runs the poll script now and then: its heartbeat (entries of waiters that
 * died expire and are skipped), the fallback for a missed notification, and the promotion of the
 * queue when a holder died without releasing (polled right when its TTL runs out).
 *
 * `startedAt` of a handed-off lease: the grant carries Redis's clock at the grant. Each script
 * reply carries Redis's clock when it ran, which is no earlier than the local time the request
 * was sent; so `sentAt + (grantServerMs - serverNowMs)` of the latest reply is a local time no
 * later than the grant, assuming only that both clocks advance at the same rate over the wait
 * (the core's drift margin covers rate differences; Redis's own TTLs rely on its clock too). It
 * is accurate to one round trip, however long the wait was. (The send time of the `BLPOP` that
 * returned the grant is also a valid bound, but that `BLPOP` is sent when the wait starts, so it
 * would cut the whole wait off the lease.) A grant found by the poll script is re-validated
 * there (its TTL restarts), so that poll's own send time is used.
 */
import { randomBytes } from 'node:crypto';
import type { AcquireRequest, QueuedAcquireOptions } from '../../core/backend.js';
import { BackendError, LockClosedError, LockError } from '../../core/errors.js';
import { limitMismatch, scriptLimit } from './limits.js';
import type {
  BlockingConnection,
  LuaScript,
  PopOutcome,
  RedisConnection,
  RunOptions,
} from './connection.js';
import { notifyKey, type LockKeys } from './keys.js';
import { Wakeups } from './wakeups.js';

/** A granted acquire, as the backend contract wants it. */
export interface Granted {
  readonly acquired: true;
  readonly fence: bigint;
  readonly startedAt: number;
}

export interface QueueContext {
  readonly connection: RedisConnection;
  readonly scripts: {
    readonly enqueue: LuaScript;
    readonly enqueueShared: LuaScript;
    readonly poll: LuaScript;
    readonly leave: LuaScript;
  };
  readonly queueEntryTtlMs: number;
  readonly pollIntervalMs: number;
  /** Lock keys whose last acquire in this backend had to queue. */
  readonly contended: Set<string>;
  /**
   * The backend's queued waits: `close()` aborts each (with `LockClosedError`) and awaits each
   * promise, so that every waiter has left its queue before connections close.
   */
  readonly waits: Map<Wakeups, Promise<unknown>>;
  /** True once `close()` has begun (a wait that queues after that is ended at once). */
  readonly closing: () => boolean;
}

interface StepReply {
  readonly code: number;
  /** The fence (code 1) or the holder's remaining TTL in ms (code 0). */
  readonly value: string | number;
  readonly serverNowMs: number;
  readonly sentAt: number;
}

/** This process's waiter ids: a random base and a counter, without `:` or `}` (see keys.ts). */
const WAITER_ID_BASE = randomBytes(9).toString('base64url');
let waiterCounter = 0;
function waiterId(): string {
  waiterCounter = (waiterCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${WAITER_ID_BASE}.${waiterCounter.toString(36)}`;
}

function jittered(ms: number, spread = 0.5): number {
  return Math.max(1, Math.round(ms * (1 - spread * Math.random())));
}

/**
 * Take the lock if the request may hold now, else wait in its queue until granted; rejects with
 * `signal.reason` after leaving the queue (and releasing a grant that raced the abort), or with
 * `LimitMismatchError` (nothing queued) for a shared request whose limit is not the key's.
 *
 * The abort is first listened to once the lock was not granted at once, through
 * `options.onAbort` when the core passes it: the core builds its deadline's signal (a
 * controller) only if read, and checks for an abort that raced a direct grant itself.
 */
export async function acquireInQueue(
  context: QueueContext,
  keys: LockKeys,
  scriptKeys: readonly string[],
  request: AcquireRequest,
  options: QueuedAcquireOptions,
): Promise<Granted> {
  const line = new Line(context, keys, scriptKeys, request);
  const contended = context.contended;
  let start: Start;
  if (contended.has(keys.lock)) {
    // Queued last time: join the queue and block in one write (see startBlocking).
    start = (await startBlocking(line)) ?? { reply: await step(line, line.enqueue) };
  } else {
    // The uncontended path: one script, as little as possible around it.
    const sentAt = Date.now();
    const reply = (await context.connection.run(
      line.enqueue,
      line.scriptKeys,
      line.args,
      line,
    )) as RawReply;
    if (typeof reply !== 'object')
      return { acquired: true, fence: BigInt(reply), startedAt: sentAt };
    start = { reply: stepReply(reply, sentAt) };
  }
  if (start.reply.code === REFUSED) {
    if (start.connection) releaseWhenPopped(context, start.connection, start.pop);
    throw limitMismatch(request, start.reply.value);
  }
  // The store answered: from here on a failure happened mid-wait, and the core retries it.
  options.onQueued?.();
  if (start.reply.code === 1) contended.delete(keys.lock);
  else {
    if (contended.size >= MAX_CONTENDED_KEYS) contended.clear();
    contended.add(keys.lock);
  }
  // A grant that raced an abort: the core checks its own deadline after every grant (and gives
  // the lock back), so with `onAbort` there is nothing to ask; any other caller gets the check.
  if (start.reply.code === 1 && (options.onAbort || !options.signal.aborted)) {
    if (start.connection) releaseWhenPopped(context, start.connection, start.pop);
    return { acquired: true, fence: BigInt(start.reply.value), startedAt: start.reply.sentAt };
  }
  const wakeups = new Wakeups();
  const stopListening = listenForAbort(options, (reason) => wakeups.abort(reason));
  // A waiter keeps the process alive (the backend's own connections otherwise do not).
  const stopKeepingAlive = context.connection.keepAlive();
  const waiting = waitInLine(line, start, wakeups);
  // Kept as is (the caller awaits it below): close() waits for it with allSettled.
  context.waits.set(wakeups, waiting);
  if (context.closing()) wakeups.abort(new LockClosedError('redis backend'));
  try {
    return await waiting;
  } finally {
    context.waits.delete(wakeups);
    stopListening();
    stopKeepingAlive();
  }
}

/** Call `onAbort` when the wait is to end: through `options.onAbort` if given, else the signal. */
function listenForAbort(
  options: QueuedAcquireOptions,
  onAbort: (reason: unknown) => void,
): () => void {
  if (options.onAbort) return options.onAbort(onAbort);
  const signal = options.signal;
  const listener = () => onAbort(signal.reason);
  if (signal.aborted) {
    listener();
    return () => undefined;
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/** Keys remembered as contended (their last acquire here queued) before the memory is reset. */
const MAX_CONTENDED_KEYS = 10_000;

/** A step's code when a shared request's limit is not the key's (`{-2, heldLimit}`). */
const REFUSED = -2;

/** The first step's reply, and the blocking connection with its `BLPOP` if it was sent too. */
interface Start {
  readonly reply: StepReply;
  readonly connection?: BlockingConnection;
  readonly pop?: Promise<PopOutcome>;
}

/**
 * On a key that was contended, send the enqueue script and the `BLPOP` on one blocking
 * connection in one write: the waiter blocks at once, with one system call instead of two (the
 * script pushes a wake marker unless it queued the waiter). Undefined when that is not possible
 * (no connection to spare, or not connected yet).
 */
async function startBlocking(line: Line): Promise<Start | undefined> {
  const { context } = line;
  const connection = context.connection.takeBlocking();
  if (!connection) return undefined;
  const sentAt = Date.now();
  const sent = connection.runThenPop(line.enqueue, line.scriptKeys, line.blockedArgs, line.notify);
  if (!sent) {
    context.connection.giveBlocking(connection, true);
    return undefined;
  }
  try {
    const reply = (await sent.reply) as RawReply;
    return { reply: stepReply(reply, sentAt), connection, pop: sent.pop };
  } catch (error) {
    // Wake the BLPOP (nothing was queued if the script did not run), then fail typed.
    await leaveQueue(line);
    releaseWhenPopped(context, connection, sent.pop);
    throw typed(error);
  }
}

/** Back to the pool once its pending `BLPOP` has returned (a wake marker is on its way). */
function releaseWhenPopped(
  context: QueueContext,
  connection: BlockingConnection,
  pop: Promise<PopOutcome> | undefined,
): void {
  if (pop) {
    void pop.then((outcome) =>
      context.connection.giveBlocking(connection, outcome.kind === 'reply'),
    );
  } else context.connection.giveBlocking(connection, true);
}

/** A failure as a `LockError` (the connection layer's already are). */
function typed(error: unknown): LockError {
  return error instanceof LockError
    ? error
    : new BackendError('redis acquire failed', { cause: error, retryable: true });
}

/** One queued request: its waiter id, its notify list and its scripts' KEYS and ARGV. */
class Line implements RunOptions {
  readonly id: string;
  /** The first step's script: exclusive or shared. */
  readonly enqueue: LuaScript;
  readonly args: readonly (string | number)[];
  readonly token: string;
  readonly ttlMs: number;

  constructor(
    readonly context: QueueContext,
    readonly keys: LockKeys,
    /** The lock's KEYS, shared by all its calls (the backend caches them per lock). */
    readonly scriptKeys: readonly string[],
    readonly request: AcquireRequest,
  ) {
    const id = waiterId();
    this.id = id;
    this.ttlMs = Math.ceil(request.ttlMs);
    this.token = request.token;
    const entryTtlMs = context.queueEntryTtlMs;
    if (request.mode === 'shared') {
      this.enqueue = context.scripts.enqueueShared;
      this.args = [request.token, this.ttlMs, id, entryTtlMs, '0', scriptLimit(request.limit)];
    } else {
      this.enqueue = context.scripts.enqueue;
      this.args = [request.token, this.ttlMs, id, entryTtlMs];
    }
  }

  /** The enqueue script's ARGV when a `BLPOP` follows it on the same connection (ARGV[5]). */
  get blockedArgs(): readonly (string | number)[] {
    const args = [...this.args];
    args[4] = '1';
    return args;
  }

  /** The list this waiter's `BLPOP` waits on: only built once it has to wait. */
  get notify(): string {
    return notifyKey(this.keys, this.id);
  }

  /** A step answered after its caller gave up (timeout): undo whatever it did (entries also
   * expire by themselves). A method, so that a step needs no options object or closure. */
  onLate(): void {
    void leaveQueue(this);
  }
}

/** A script's reply: a bare fence (a direct grant on the uncontended path) or a tuple. */
type RawReply = number | string | [code: number, value: string | number, serverNowMs?: number];

function stepReply(reply: RawReply, sentAt: number): StepReply {
  if (typeof reply !== 'object') return { code: 1, value: reply, serverNowMs: Number.NaN, sentAt };
  return { code: reply[0], value: reply[1], serverNowMs: reply[2] ?? Number.NaN, sentAt };
}

async function step(line: Line, script: LuaScript, blocked = false): Promise<StepReply> {
  const sentAt = Date.now();
  const args = blocked ? line.blockedArgs : line.args;
  const reply = (await line.context.connection.run(
    script,
    line.scriptKeys,
    args,
    line,
  )) as RawReply;
  return stepReply(reply, sentAt);
}

function leave(line: Line): Promise<unknown> {
  return line.context.connection.run(line.context.scripts.leave, line.scriptKeys, [
    line.token,
    line.id,
    line.context.queueEntryTtlMs,
  ]);
}

/** First and last delay between background attempts to leave the queue. */
const LEAVE_RETRY_FIRST_MS = 50;
const LEAVE_RETRY_MAX_MS = 1_000;

/**
 * Leave the queue for good. If the call fails (the connection is down), keep trying in the
 * background until it gets through, the backend closes, or nothing of ours can be left (the entry
 * has expired and any grant to it has run out): a live entry left behind is granted the lock at
 * the next release and holds it for a whole TTL, while the caller retries under a new token and
 * waits behind it.
 */
async function leaveQueue(line: Line): Promise<void> {
  try {
    await leave(line);
    return;
  } catch {
    // Retried below.
  }
  const { context } = line;
  const giveUpAt = Date.now() + line.ttlMs + context.queueEntryTtlMs;
  let delayMs = LEAVE_RETRY_FIRST_MS;
  const retry = (): void => {
    if (context.closing() || Date.now() > giveUpAt) return;
    leave(line).catch(() => {
      delayMs = Math.min(delayMs * 2, LEAVE_RETRY_MAX_MS);
      setTimeout(retry, delayMs).unref();
    });
  };
  setTimeout(retry, delayMs).unref();
}

async function waitInLine(line: Line, start: Start, wakeups: Wakeups): Promise<Granted> {
  const { context, notify } = line;
  let left = false;
  const abandon = async (reason: unknown): Promise<never> => {
    left = true;
    await leaveQueue(line);
    throw reason;
  };
  // Aborted while the first step ran: it may have queued us, or even granted the lock.
  if (wakeups.aborted) return abandon(wakeups.reason);
  let reply = start.reply;
  let anchor = reply;

  let connection: BlockingConnection | undefined =
    start.connection ?? context.connection.takeBlocking();
  let pop: Promise<PopOutcome> | undefined = start.pop;
  const heartbeatMs = context.queueEntryTtlMs / 3;
  const nextPollDelay = (remainingMs: number): number => {
    const cadence = connection ? heartbeatMs : Math.min(heartbeatMs, context.pollIntervalMs);
    // A holder that never releases is noticed right when its TTL runs out.
    const atExpiry = remainingMs >= 0 ? remainingMs + jittered(20, 1) : context.pollIntervalMs;
    return Math.min(jittered(cadence, 0.3), atExpiry);
  };
  let pollDelay = nextPollDelay(Number(reply.value));

  try {
    for (;;) {
      if (connection && !pop) {
        pop = connection.pop(notify);
      }
      const event = await wakeups.next(pop, pollDelay);
      if (event === 'abort') return await abandon(wakeups.reason);
      if (event === 'poll') {
        reply = await step(line, context.scripts.poll);
        // Our entry expired (we heartbeated too late): join again, waking our BLPOP on a grant.
        if (reply.code === -1) reply = await step(line, line.enqueue, !!pop);
        if (reply.code === REFUSED) {
          // Rejoining found another limit in use (our entry had expired): nothing is queued.
          left = true;
          throw limitMismatch(line.request, reply.value);
        }
        if (wakeups.aborted) return await abandon(wakeups.reason);
        if (reply.code === 1) {
          return { acquired: true, fence: BigInt(reply.value), startedAt: reply.sentAt };
        }
        anchor = reply;
        pollDelay = nextPollDelay(Number(reply.value));
        continue;
      }
      pop = undefined;
      if (event.kind === 'error') {
        // Lost the blocking connection: keep waiting by polling alone.
        context.connection.giveBlocking(connection!, false);
        connection = undefined;
        pollDelay = Math.min(pollDelay, jittered(context.pollIntervalMs));
        continue;
      }
      const message = event.value?.[1];
      if (message === undefined || !message.startsWith('g|')) continue; // timeout, stale wake
      const receivedAt = Date.now();
      // `g|<fence>|<grantServerMs>`, read without building an array (a waiter's hot path).
      const bar = message.indexOf('|', 2);
      const fence = message.slice(2, bar);
      const grantServerMs = message.slice(bar + 1);
      if (wakeups.aborted) return await abandon(wakeups.reason);
      const startedAt = anchor.sentAt + (Number(grantServerMs) - anchor.serverNowMs);
      return { acquired: true, fence: BigInt(fence), startedAt: Math.min(startedAt, receivedAt) };
    }
  } catch (error) {
    if (left) throw error;
    if (wakeups.aborted) return await abandon(wakeups.reason);
    // A failed poll leaves the outcome unknown: leave (best effort) so nothing stays queued.
    await leaveQueue(line);
    throw typed(error);
  } finally {
    // Every way out of the loop pushes a grant or a wake marker, so a pending BLPOP returns.
    if (connection) releaseWhenPopped(context, connection, pop);
  }
}
