/**
 * Runs the lock scripts: one `EVALSHA` per operation (one round trip), falling back to `EVAL`
 * when the server answers `NOSCRIPT` (after a restart, a failover or `SCRIPT FLUSH`), which also
 * caches the script again. Works the same on a `Redis` and a `Cluster` client: both route the
 * call by the slot of its first key. Every call fails fast with a typed error when the client is
 * not connected, is bounded by a timeout, and honours an `AbortSignal`.
 *
 * Calls made in the same tick on a standalone client go out together: the first is written at
 * once (a lone call, the common case, waits for nothing), the second corks the socket, and every
 * 16th call and the end of the tick flush it, so independent `EVALSHA`s (still one round trip
 * each) share a system call, which is most of a lock's client-side cost when many operations
 * are in flight. Commands are built and sent directly (`sendCommand`), without ioredis's
 * per-call method wrapper or a pipeline object. This is the hot path: no per-call timer (one
 * sweeping interval fails overdue calls) and no per-call closures beyond the promise's.
 */
import type { Cluster, Command, Redis } from 'ioredis';
import { BackendUnavailableError, type LockError } from '../../../core/errors.js';
import type { LuaScript, RunOptions as CallOptions } from '../connection.js';
import { toLockError, type ErrorContext } from './errors.js';
import { ioredis } from './library.js';

/** A user's or our own ioredis client. */
export type RedisClient = Redis | Cluster;

/**
 * Calls per write while corked. Writing only at the end of the tick makes client and server take
 * turns: with 64 operations in flight Redis idles while the client builds all 64 requests, and the
 * client idles while Redis runs them (each side ~50 % busy, 21–28k pairs/s in B3). Flushing every
 * 16 calls lets Redis start on the first ones while the rest are built (B3: 39–47k pairs/s; 4 and
 * 64 were slower, 8 and 32 about the same), and still saves most of the system calls.
 */
const CALLS_PER_WRITE = 16;

type CommandOptions = ConstructorParameters<typeof Command>[2];

function commandOptions(connection: Redis): CommandOptions {
  return { keyPrefix: connection.options.keyPrefix, replyEncoding: 'utf8' };
}

/** Connection states in which a command would only wait in ioredis's queues, or fail later. */
const DOWN_STATES = new Set(['close', 'reconnecting', 'disconnecting', 'end']);

export interface RunOptions extends CallOptions {
  /**
   * Send on this standalone connection instead of the client (a waiter's blocking connection,
   * which its caller corks itself). A `NOSCRIPT` answer is still retried on the client.
   */
  readonly via?: Redis;
}

/** Told when calls start being in flight and when none are any more (see `SocketRefs`). */
export interface BusyListener {
  busy(): void;
  idle(): void;
}

/** One script call in flight. */
class Call {
  settled = false;
  /** Neighbours in the runner's list of unsettled calls (send order, so deadline order). */
  prev: Call | undefined;
  next: Call | undefined;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;
  readonly deadline: number;
  readonly onAbort: (() => void) | undefined;

  constructor(
    readonly runner: ScriptRunner,
    readonly script: LuaScript,
    readonly keys: readonly string[],
    readonly args: readonly (string | number)[],
    readonly options: RunOptions | undefined,
    timeoutMs: number,
  ) {
    this.deadline = Date.now() + timeoutMs;
    const signal = options?.signal;
    if (signal) {
      this.onAbort = () => this.fail(signal.reason);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.runner.forget(this);
    if (this.onAbort) this.options?.signal?.removeEventListener('abort', this.onAbort);
    return true;
  }

  succeed(result: unknown): void {
    if (this.settle()) this.resolve(result);
    else this.options?.onLate?.(result);
  }

  fail(reason: unknown): void {
    if (this.settle()) this.reject(reason);
  }

  /** A reply: NOSCRIPT is answered by sending the script itself. */
  answer(error: Error | null, result: unknown): void {
    if (!error) this.succeed(result);
    else if (error.message.startsWith('NOSCRIPT')) this.runner.evalSource(this);
    else this.fail(this.runner.typed(error, this.script));
  }
}

export class ScriptRunner {
  readonly #client: RedisClient;
  readonly #timeoutMs: number;
  readonly #errors: ErrorContext;
  readonly #busy: BusyListener | undefined;
  readonly #Command: typeof Command = ioredis().Command;
  /** True once a call was written in this tick: the next ones are corked. */
  #inTick = false;
  /** The socket corked for this tick's later calls, uncorked at the end of the tick. */
  #corked: Redis['stream'] | undefined;
  /** Calls written to the corked socket since it was last flushed. */
  #batched = 0;
  readonly #endTick = (): void => {
    this.#inTick = false;
    const stream = this.#corked;
    this.#corked = undefined;
    this.#batched = 0;
    stream?.uncork();
  };
  /**
   * Unsettled calls in send order (so in deadline order), swept by one interval while any is
   * pending. A linked list, so that a call leaves it as it settles: a settled call kept until the
   * next sweep would outlive the young generation and make every garbage collection dearer.
   */
  #first: Call | undefined;
  /** Options of every `Command` sent on the client (built once). */
  #commandOptions: CommandOptions | undefined;
  #last: Call | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /**
   * @param errors what failures are reported with: the secrets to scrub and the client's last
   *   connection error (the root cause of a call that failed because the client is down).
   * @param busy told when the sweeper starts (calls in flight) and stops (none for a while).
   */
  constructor(client: RedisClient, timeoutMs: number, errors: ErrorContext, busy?: BusyListener) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#errors = errors;
    this.#busy = busy;
  }

  /** Run `script` once; resolves with its raw reply. */
  run(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    options?: RunOptions,
  ): Promise<unknown> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const status = this.#client.status;
    if (DOWN_STATES.has(status)) {
      return Promise.reject(
        new BackendUnavailableError(`redis ${script.name} failed: connection is ${status}`, {
          cause: this.#errors.connectionError(),
        }),
      );
    }
    const call = new Call(this, script, keys, args, options, this.#timeoutMs);
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    if (this.#last) {
      this.#last.next = call;
      call.prev = this.#last;
    } else {
      this.#first = call;
    }
    this.#last = call;
    if (!this.#sweeper) this.#startSweeper();
    const via = options?.via;
    const client = via ?? this.#client;
    if (client.isCluster) {
      // A cluster client routes each call to its slot's node itself.
      this.#sendViaCluster(call);
      return promise;
    }
    if (via) {
      // The caller corks it.
    } else if (!this.#inTick) {
      // Measured on B1 (one call at a time): corking a lone call until the end of the tick
      // delays its write behind whatever else runs in that tick, for no saved system call.
      this.#inTick = true;
      process.nextTick(this.#endTick);
    } else if (!this.#corked && client.status === 'ready') {
      const stream = (client as Redis).stream;
      if (stream) {
        stream.cork();
        this.#corked = stream;
      }
    }
    const argv = new Array<string | number>(2 + keys.length + args.length);
    argv[0] = script.sha;
    argv[1] = keys.length;
    let i = 2;
    for (const key of keys) argv[i++] = key;
    for (const arg of args) argv[i++] = arg;
    const command = new this.#Command(
      'evalsha',
      argv,
      via ? commandOptions(via) : (this.#commandOptions ??= commandOptions(client as Redis)),
    );
    void (client as Redis).sendCommand(command);
    const corked = this.#corked;
    if (corked && ++this.#batched >= CALLS_PER_WRITE) {
      this.#batched = 0;
      corked.uncork();
      corked.cork();
    }
    command.promise.then(
      (result) => call.answer(null, result),
      (error: unknown) =>
        call.answer(error instanceof Error ? error : new Error(String(error)), null),
    );
    return promise;
  }

  /** The typed error for a failed call. */
  typed(error: unknown, script: LuaScript): LockError {
    return toLockError(error, script.name, this.#errors);
  }

  /** Send the script's source (`EVAL`), which also caches it on the server. */
  evalSource(call: Call): void {
    this.#client.eval(call.script.source, call.keys.length, ...call.keys, ...call.args).then(
      (result) => call.succeed(result),
      (error: unknown) => call.fail(this.typed(error, call.script)),
    );
  }

  #sendViaCluster(call: Call): void {
    this.#client.evalsha(call.script.sha, call.keys.length, ...call.keys, ...call.args).then(
      (result) => call.answer(null, result),
      (error: unknown) =>
        call.answer(error instanceof Error ? error : new Error(String(error)), null),
    );
  }

  #startSweeper(): void {
    const period = Math.max(10, Math.min(250, Math.floor(this.#timeoutMs / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), period);
    this.#sweeper.unref?.();
    // Calls are in flight until the sweeper stops: the connections must keep the process alive
    // (told once per busy spell, not per call: this is the hot path).
    this.#busy?.busy();
  }

  /** Remove a settled call from the list of unsettled ones. */
  forget(call: Call): void {
    if (call.prev) call.prev.next = call.next;
    else if (this.#first === call) this.#first = call.next;
    if (call.next) call.next.prev = call.prev;
    else if (this.#last === call) this.#last = call.prev;
    call.prev = undefined;
    call.next = undefined;
  }

  /** Fail overdue calls, and stop when nothing is in flight. */
  #sweep(): void {
    const now = Date.now();
    for (let call = this.#first; call && call.deadline <= now; call = this.#first) {
      // Not connected (a black-holed address, a reconnect in progress): say why.
      const status = this.#client.status;
      const cause =
        status === 'ready'
          ? undefined
          : (this.#errors.connectionError() ?? new Error(`not connected (${status})`));
      call.fail(
        new BackendUnavailableError(
          `redis ${call.script.name} failed: no answer within ${this.#timeoutMs} ms`,
          { cause },
        ),
      );
    }
    if (!this.#first) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      this.#busy?.idle();
    }
  }
}
