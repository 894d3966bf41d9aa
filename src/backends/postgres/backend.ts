/**
 * The PostgreSQL lock backend: each operation is one call of the lease table's function (one
 * statement, one round trip, see schema.ts); waiters queue in the table and are handed the key by
 * the release that frees it, woken through the backend's one `LISTEN` connection.
 */
import pg from 'pg';
import type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  LeaseRef,
  LockBackend,
  LockInfo,
  OperationOptions,
  QueuedAcquireOptions,
  ReleaseOutcome,
} from '../../core/backend.js';
import { InvalidArgumentError, LockClosedError } from '../../core/errors.js';
import { CallRunner, type CallReply } from './calls.js';
import { GrantListener } from './grant-listener.js';
import {
  resolveOptions,
  type PostgresBackendOptions,
  type ResolvedPostgresOptions,
} from './options.js';
import {
  acquireInQueue,
  ContendedKeys,
  mismatch,
  type Granted,
  type QueueContext,
  type WaitEvents,
} from './queued-acquire.js';
import { SessionConnections } from './session.js';
import { lockInfoOf, stateQuery, type StateRow } from './state-query.js';

/** See {@link postgresBackend}. */
export class PostgresBackend implements LockBackend {
  readonly name: string;
  readonly capabilities: BackendCapabilities;

  readonly #options: ResolvedPostgresOptions;
  readonly #runner: CallRunner;
  readonly #listener: GrantListener;
  readonly #sessions: SessionConnections | undefined;
  readonly #queue: QueueContext;
  #closed: Promise<void> | undefined;
  /** When this backend last swept idle keys' rows (see `idleKeyTtlMs`). */
  #sweptAt = Date.now();

  constructor(options: PostgresBackendOptions) {
    this.#options = resolveOptions(options);
    const { pool, schema, table, autoMigrate, secrets, mode } = this.#options;
    this.name = mode === 'session' ? 'postgres-session' : 'postgres';
    this.capabilities = Object.freeze({
      fencing: true,
      notify: false,
      fifo: true,
      crossProcess: true,
      shared: true,
      ...(mode === 'session' ? { endsWithConnection: true } : {}),
    });
    this.#runner = new CallRunner(pool, { schema, table }, { autoMigrate, secrets });
    // The LISTEN connection is the pool's configuration on a client of its own: it is held for as
    // long as anyone waits, and must not take one of the pool's connections away from its users.
    const poolConfig = (pool as unknown as { options: pg.ClientConfig }).options;
    this.#listener = new GrantListener(
      () => new pg.Client(poolConfig),
      this.#runner.objects.channel,
    );
    this.#sessions = mode === 'session' ? new SessionConnections(pool) : undefined;
    this.#queue = {
      runner: this.#runner,
      listener: this.#listener,
      sessions: this.#sessions,
      queueEntryTtlMs: this.#options.queueEntryTtlMs,
      pollIntervalMs: this.#options.pollIntervalMs,
      contended: new ContendedKeys(),
      waits: new Map(),
      closing: () => this.#closed !== undefined,
    };
  }

  /** The pool in use (yours, or the one built from `url`). */
  get pool(): pg.Pool {
    return this.#options.pool;
  }

  /** The process id of the backend's `LISTEN` connection, while it is connected. */
  get listenerProcessId(): number | undefined {
    return this.#listener.processId;
  }

  async tryAcquire(request: AcquireRequest, _options?: OperationOptions): Promise<AcquireResult> {
    this.#throwIfClosed();
    checkText(request.key, 'key');
    checkText(request.token, 'token');
    this.#sweepNowAndThen();
    const args = {
      token: request.token,
      ttlMs: request.ttlMs,
      mode: request.mode ?? 'exclusive',
      limit: request.limit ?? Infinity,
    } as const;
    const sessions = this.#sessions;
    if (!sessions) {
      const contended = this.#queue.contended;
      const reply = await this.#runner.call('acquire', request.key, {
        ...args,
        fast: !contended.has(request.key),
      });
      contended.note(request.key, reply.code === 1);
      return this.#outcome(request, reply);
    }
    const client = await sessions.take().catch((error: unknown) => {
      throw this.#runner.error(error, 'tryAcquire');
    });
    let reply: CallReply;
    try {
      reply = await this.#runner.call('acquire', request.key, { ...args, session: true }, client);
    } catch (error) {
      sessions.giveBack(client, false);
      throw error;
    }
    if (reply.code !== 1) {
      sessions.giveBack(client);
      return this.#outcome(request, reply);
    }
    return {
      acquired: true,
      fence: BigInt(reply.fence ?? 0),
      lost: sessions.hold(request.token, client),
    };
  }

  acquire(request: AcquireRequest, options: QueuedAcquireOptions): Promise<Granted> {
    try {
      this.#throwIfClosed();
      checkText(request.key, 'key');
      checkText(request.token, 'token');
      this.#sweepNowAndThen();
      return acquireInQueue(this.#queue, request, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  async extend(lease: LeaseRef, ttlMs: number, _options?: OperationOptions): Promise<ExtendResult> {
    this.#throwIfClosed();
    // A session holding's own connection is idle and at hand: no second connection needed.
    const connection = this.#sessions?.connectionOf(lease.token);
    const reply = await this.#runner.call(
      'extend',
      lease.key,
      { token: lease.token, ttlMs },
      connection,
    );
    if (reply.code === 1) return { extended: true };
    // Lost: a session connection has nothing left to hold.
    this.#sessions?.drop(lease.token, false);
    return { extended: false, reason: reply.code === 0 ? 'expired' : 'not-owner' };
  }

  async release(lease: LeaseRef, _options?: OperationOptions): Promise<ReleaseOutcome> {
    this.#throwIfClosed();
    const connection = this.#sessions?.connectionOf(lease.token);
    let code: number;
    try {
      // Through the holding's own connection, which gives its advisory lock back in the same call.
      const reply = await this.#runner.call(
        'release',
        lease.key,
        {
          token: lease.token,
          session: connection !== undefined,
          fast: !this.#queue.contended.has(lease.key),
        },
        connection,
      );
      code = reply.code;
      this.#sessions?.drop(lease.token, true);
    } catch (error) {
      if (!connection) throw error;
      // The connection failed: closing it frees its advisory lock; remove the row through the pool.
      this.#sessions?.drop(lease.token, false);
      code = (await this.#runner.call('release', lease.key, { token: lease.token })).code;
    }
    return code === 1 ? 'released' : code === 0 ? 'expired' : 'not-owner';
  }

  async inspect(key: string, _options?: OperationOptions): Promise<LockInfo | null> {
    this.#throwIfClosed();
    checkText(key, 'key');
    const [row] = await this.#runner.query<StateRow>('inspect', {
      ...stateQuery(this.#runner.objects, 'key'),
      values: [key],
    });
    return row ? lockInfoOf(row) : null;
  }

  async list(prefix: string, _options?: OperationOptions): Promise<LockInfo[]> {
    this.#throwIfClosed();
    checkText(prefix, 'prefix');
    const rows = await this.#runner.query<StateRow>('list', {
      ...stateQuery(this.#runner.objects, 'prefix'),
      values: [prefix],
    });
    return rows.map(lockInfoOf).filter((info): info is LockInfo => info !== null);
  }

  async forceRelease(key: string, _options?: OperationOptions): Promise<boolean> {
    this.#throwIfClosed();
    checkText(key, 'key');
    return (await this.#runner.call('force', key, {})).code === 1;
  }

  /**
   * End queued acquires (they leave their queues), close the `LISTEN` connection and session
   * connections, and end the pool if the backend built it. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const reason = new LockClosedError('postgres backend');
    const waits = [...this.#queue.waits] as [WaitEvents, Promise<unknown>][];
    for (const [wait] of waits) wait.abort(reason);
    await Promise.allSettled(waits.map(([, waiting]) => waiting));
    await this.#listener.close();
    this.#sessions?.closeAll();
    if (this.#options.ownsPool) await this.#options.pool.end().catch(() => undefined);
  }

  #outcome(request: AcquireRequest, reply: CallReply): AcquireResult {
    if (reply.code === 1) return { acquired: true, fence: BigInt(reply.fence ?? 0) };
    if (reply.code === -2) throw mismatch(request, reply);
    return reply.value === null
      ? { acquired: false }
      : { acquired: false, retryAfterMs: reply.value };
  }

  /** Delete idle keys' rows, in the background, at most once per `idleKeyTtlMs`. */
  #sweepNowAndThen(): void {
    const now = Date.now();
    const idleMs = this.#options.idleKeyTtlMs;
    if (now - this.#sweptAt < idleMs) return;
    this.#sweptAt = now;
    this.#runner.sweep(idleMs).catch(() => undefined); // a failed sweep waits for the next period
  }

  #throwIfClosed(): void {
    if (this.#closed) throw new LockClosedError('postgres backend');
  }
}

/** PostgreSQL text cannot hold NUL: refuse it rather than fail in the server. */
function checkText(value: string, option: string): void {
  if (value.includes('\0')) {
    throw new InvalidArgumentError(option, 'must not contain NUL (PostgreSQL text cannot hold it)');
  }
}
