/**
 * Runs the lock scripts on a node-redis client: one `EVALSHA` per operation (one round trip),
 * falling back to `EVAL` when the server answers `NOSCRIPT` (after a restart, a failover or
 * `SCRIPT FLUSH`), which also caches the script again. node-redis writes every command issued in
 * the same tick together (it auto-pipelines), so independent calls already share a system call.
 *
 * A lock operation must not wait for a reconnect (its lease's clock keeps running) nor be resent
 * after one (its outcome would be unknown). So a call fails fast while the client is down (it has
 * reported a connection error since it was last ready); only a connect in progress is waited for,
 * and a call waiting for it fails, and is withdrawn from node-redis's queue, as soon as that
 * connect fails. Every call is bounded by the command timeout (one sweeping interval, no per-call
 * timer) and honours an `AbortSignal`.
 */
import { BackendUnavailableError, type LockError } from '../../../core/errors.js';
import type { LuaScript, RunOptions as CallOptions } from '../connection.js';
import type { NodeRedisClient, NodeRedisCommandOptions } from './client.js';
import { toLockError, type NodeRedisConnectionErrors } from './errors.js';

export interface NodeRedisRunOptions extends CallOptions {
  /** Send on this connection instead of the client (a waiter's blocking connection). */
  readonly via?: NodeRedisClient;
}

/** Told when calls start being in flight and when none are any more. */
export interface BusyListener {
  busy(): void;
  idle(): void;
}

/** One script call in flight. */
class Call {
  settled = false;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;
  readonly deadline: number;
  readonly onAbort: (() => void) | undefined;
  /** Set for a call queued while the client connects: aborting it withdraws the command. */
  withdraw: AbortController | undefined;

  constructor(
    readonly runner: NodeRedisScriptRunner,
    readonly script: LuaScript,
    readonly keys: readonly string[],
    readonly args: readonly (string | number)[],
    readonly options: NodeRedisRunOptions | undefined,
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
    this.withdraw = undefined;
    if (this.settle()) this.resolve(result);
    else this.options?.onLate?.(result);
  }

  fail(reason: unknown): void {
    if (!this.settle()) return;
    // Not written yet (still waiting for a connect): it must never run later.
    this.withdraw?.abort();
    this.reject(reason);
  }

  answer(error: unknown, result: unknown): void {
    if (error === null) this.succeed(result);
    else if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      this.runner.evalSource(this);
    } else if (!this.settled) this.fail(this.runner.typed(error, this.script));
  }
}

/** The `EVALSHA` (or `EVAL`) command line of a call: node-redis takes only strings. */
function commandLine(
  command: string,
  first: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): string[] {
  const argv = new Array<string>(3 + keys.length + args.length);
  argv[0] = command;
  argv[1] = first;
  argv[2] = String(keys.length);
  let i = 3;
  for (const key of keys) argv[i++] = key;
  for (const arg of args) argv[i++] = typeof arg === 'string' ? arg : String(arg);
  return argv;
}

export class NodeRedisScriptRunner {
  readonly #client: NodeRedisClient;
  readonly #timeoutMs: number;
  readonly #errors: NodeRedisConnectionErrors;
  readonly #busy: BusyListener | undefined;
  readonly #calls = new Set<Call>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    client: NodeRedisClient,
    timeoutMs: number,
    errors: NodeRedisConnectionErrors,
    busy?: BusyListener,
  ) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#errors = errors;
    this.#busy = busy;
    // A failed connect fails the calls that were waiting for it, at once and with its reason.
    errors.onError = () => this.#failWaitingForConnect();
  }

  run(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    options?: NodeRedisRunOptions,
  ): Promise<unknown> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const client = options?.via ?? this.#client;
    if (!client.isReady && (!client.isOpen || this.#errors.failed || options?.via)) {
      return Promise.reject(
        new BackendUnavailableError(
          `redis ${script.name} failed: ${client.isOpen ? 'not connected' : 'the client is closed'}`,
          { cause: this.#errors.connectionError() },
        ),
      );
    }
    const call = new Call(this, script, keys, args, options, this.#timeoutMs);
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    this.#calls.add(call);
    if (!this.#sweeper) this.#startSweeper();
    let commandOptions: NodeRedisCommandOptions | undefined;
    if (!client.isReady) {
      // Waits in node-redis's queue for the connect in progress; withdrawn if that fails.
      call.withdraw = new AbortController();
      commandOptions = { abortSignal: call.withdraw.signal };
    }
    client.sendCommand(commandLine('EVALSHA', script.sha, keys, args), commandOptions).then(
      (result) => call.answer(null, result),
      (error: unknown) => call.answer(error, null),
    );
    return promise;
  }

  /** The typed error for a failed call. */
  typed(error: unknown, script: LuaScript): LockError {
    return toLockError(error, script.name, this.#errors);
  }

  /** Send the script's source (`EVAL`) on the client, which also caches it on the server. */
  evalSource(call: Call): void {
    this.#client.sendCommand(commandLine('EVAL', call.script.source, call.keys, call.args)).then(
      (result) => call.succeed(result),
      (error: unknown) => call.fail(this.typed(error, call.script)),
    );
  }

  /** Remove a settled call. */
  forget(call: Call): void {
    this.#calls.delete(call);
  }

  #failWaitingForConnect(): void {
    if (this.#client.isReady) return;
    for (const call of this.#calls) {
      if (call.withdraw) {
        call.fail(
          new BackendUnavailableError(`redis ${call.script.name} failed: could not connect`, {
            cause: this.#errors.connectionError(),
          }),
        );
      }
    }
  }

  #startSweeper(): void {
    const period = Math.max(10, Math.min(250, Math.floor(this.#timeoutMs / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), period);
    this.#sweeper.unref?.();
    this.#busy?.busy();
  }

  /** Fail overdue calls, and stop when nothing is in flight. */
  #sweep(): void {
    const now = Date.now();
    for (const call of this.#calls) {
      if (call.deadline > now) continue;
      const cause = this.#client.isReady
        ? undefined
        : (this.#errors.connectionError() ?? new Error('not connected'));
      call.fail(
        new BackendUnavailableError(
          `redis ${call.script.name} failed: no answer within ${this.#timeoutMs} ms`,
          { cause },
        ),
      );
    }
    if (this.#calls.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      this.#busy?.idle();
    }
  }
}
