/**
 * The worker processes: started once with `child_process.fork` and reused by every run. From a
 * clone the worker is TypeScript, run through tsx's loader; in the published package it is the
 * compiled JavaScript next to this file, run by plain Node. Waits are bounded, and a worker that dies fails the run with its last
 * output rather than leaving it hanging.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Payment } from './model.js';
import {
  WORKER_CONFIG_ENV,
  type FromWorker,
  type RunConfig,
  type ToWorker,
  type WorkerConfig,
  type WorkerStats,
} from './protocol.js';

/** `.ts` when this module runs from source (tsx, vitest), `.js` when compiled. */
const OWN_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const WORKER_FILE = fileURLToPath(new URL(`./worker${OWN_EXTENSION}`, import.meta.url));
// Resolved from here, so the demo works from any working directory.
const WORKER_EXEC_ARGV =
  OWN_EXTENSION === '.ts'
    ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href]
    : [];

type MessageOf<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

interface Waiter {
  readonly type: FromWorker['type'];
  readonly resolve: (message: FromWorker) => void;
  readonly reject: (error: Error) => void;
}

/** One worker process and the messages it sends. */
class WorkerProcess {
  readonly #child: ChildProcess;
  readonly #waiters = new Set<Waiter>();
  #output = '';
  #failure: Error | undefined;
  /** Called for every `processed` message. */
  onProcessed: () => void = () => undefined;
  /** Settles once the process has exited and its output and IPC channel are closed. */
  readonly closed: Promise<void>;

  constructor(config: WorkerConfig) {
    this.#child = fork(WORKER_FILE, [], {
      execArgv: WORKER_EXEC_ARGV,
      env: { ...process.env, [WORKER_CONFIG_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const keepTail = (chunk: Buffer) => (this.#output = (this.#output + chunk).slice(-4_000));
    this.#child.stdout?.on('data', keepTail);
    this.#child.stderr?.on('data', keepTail);
    this.#child.on('error', (error) => this.#fail(error));
    this.#child.on('message', (message: FromWorker) => {
      if (message.type === 'processed') return this.onProcessed();
      if (message.type === 'failed') {
        return this.#fail(new Error(`worker ${config.workerId} failed: ${message.message}`));
      }
      for (const waiter of this.#waiters) {
        if (waiter.type !== message.type) continue;
        this.#waiters.delete(waiter);
        waiter.resolve(message);
      }
    });
    // 'close', not 'exit': it comes after the last IPC message has been delivered.
    this.closed = new Promise((resolve) =>
      this.#child.on('close', (code, signal) => {
        const output = this.#output.trim() || 'no output';
        this.#fail(new Error(`worker ${config.workerId} exited (${signal ?? code}): ${output}`));
        resolve();
      }),
    );
  }

  /** The next message of `type`; rejects if the worker fails or exits first. */
  next<T extends FromWorker['type']>(type: T): Promise<MessageOf<T>> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) =>
      this.#waiters.add({ type, resolve: resolve as (message: FromWorker) => void, reject }),
    );
  }

  send(message: ToWorker): void {
    if (this.#child.connected) this.#child.send(message);
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters) waiter.reject(this.#failure);
    this.#waiters.clear();
  }
}

/** Reject with a clear message if `promise` takes longer than `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} took longer than ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What one worker does in a run. */
export interface WorkerAssignment {
  readonly run: RunConfig;
  readonly payments: readonly Payment[];
}

/** A fixed set of worker processes. */
export class WorkerPool {
  readonly #workers: readonly WorkerProcess[];

  private constructor(workers: readonly WorkerProcess[]) {
    this.#workers = workers;
  }

  /** Start `count` workers and wait until every one is ready (its lock backend open). */
  static async start(count: number, backendUrl: string, timeoutMs: number): Promise<WorkerPool> {
    const workers = Array.from({ length: count }, (_, workerId) => {
      return new WorkerProcess({ workerId, backendUrl });
    });
    const pool = new WorkerPool(workers);
    try {
      const ready = Promise.all(workers.map((worker) => worker.next('ready')));
      await within(ready, timeoutMs, `starting ${count} worker processes`);
      return pool;
    } catch (error) {
      await pool.close();
      throw error;
    }
  }

  get size(): number {
    return this.#workers.length;
  }

  /**
   * Give every worker its assignment at the same moment, and wait until all are done.
   * `onProcessed` is called after every processed payment.
   */
  async run(
    assignmentOf: (workerId: number) => WorkerAssignment,
    onProcessed: () => void,
    timeoutMs: number,
  ): Promise<WorkerStats[]> {
    const done = this.#workers.map((worker) => worker.next('done'));
    this.#workers.forEach((worker, workerId) => {
      worker.onProcessed = onProcessed;
      worker.send({ type: 'run', ...assignmentOf(workerId) });
    });
    const messages = await within(Promise.all(done), timeoutMs, 'the run');
    return messages.map((message) => message.stats);
  }

  /** Ask every worker to exit; kill the ones that do not within a few seconds. */
  async close(): Promise<void> {
    for (const worker of this.#workers) worker.send({ type: 'exit' });
    const closed = Promise.all(this.#workers.map((worker) => worker.closed));
    await within(closed, 5_000, 'stopping the workers').catch(() => {
      for (const worker of this.#workers) worker.kill();
      return closed;
    });
  }
}
