/**
 * A `LockBackend` that forwards the contract's one-shot calls to `memory-server.ts` over TCP, so
 * that worker processes share one memory store. Waiting is the core's polling with backoff (no
 * queue, no notifications); a lost connection fails calls with a retryable
 * `BackendUnavailableError` and the next call reconnects.
 *
 * As a backend module for worker processes: `createBackend()` reads DISTLOCK_MEMORY_SERVER
 * (`host:port`).
 */
import { connect, type Socket } from 'node:net';
import type {
  AcquireResult,
  ExtendResult,
  LockBackend,
  LockInfo,
  ReleaseOutcome,
} from '../../src/core/backend.js';
import { BackendError, BackendUnavailableError, LockClosedError } from '../../src/core/errors.js';
import { decodeResult, encodeRequest, type Reply, type Request } from './remote-protocol.js';

/** Calls unanswered this long fail (the core's own operation timeout is usually shorter). */
const CALL_TIMEOUT_MS = 10_000;

type Call = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

/** A backend over the memory server at `host:port`. */
export function remoteMemoryBackend(address: string): LockBackend {
  const [host = '127.0.0.1', port = '0'] = address.split(':');
  let socket: Socket | undefined;
  let nextId = 1;
  let closed = false;
  const pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: unknown) => void; timer: NodeJS.Timeout }
  >();

  const failAll = (why: string) => {
    for (const [id, call] of pending) {
      clearTimeout(call.timer);
      call.reject(new BackendUnavailableError(`memory server: ${why}`));
      pending.delete(id);
    }
  };

  const open = (): Socket => {
    if (socket && !socket.destroyed) return socket;
    const fresh = connect(Number(port), host);
    fresh.setNoDelay(true);
    let buffer = '';
    fresh.on('data', (chunk) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const reply = JSON.parse(buffer.slice(0, newline)) as Reply;
        buffer = buffer.slice(newline + 1);
        const call = pending.get(reply.id);
        if (!call) continue;
        pending.delete(reply.id);
        clearTimeout(call.timer);
        if ('ok' in reply) call.resolve(decodeResult(reply.ok));
        else call.reject(toError(reply.error));
      }
    });
    fresh.on('error', () => undefined);
    fresh.on('close', () => {
      if (socket === fresh) socket = undefined;
      failAll('connection lost');
    });
    socket = fresh;
    return fresh;
  };

  const call = <T>(request: Call, signal?: AbortSignal): Promise<T> => {
    if (closed) return Promise.reject(new LockClosedError('memory server backend'));
    signal?.throwIfAborted();
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new BackendUnavailableError('memory server: no answer'));
      }, CALL_TIMEOUT_MS);
      timer.unref();
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      open().write(`${encodeRequest({ ...request, id } as Request)}\n`);
    });
  };

  return {
    name: 'memory-server',
    capabilities: { fencing: true, notify: false, fifo: false, crossProcess: true, shared: true },
    tryAcquire: (request, op) => call<AcquireResult>({ op: 'tryAcquire', request }, op?.signal),
    extend: (lease, ttlMs, op) =>
      call<ExtendResult>(
        { op: 'extend', lease: { key: lease.key, token: lease.token }, ttlMs },
        op?.signal,
      ),
    release: (lease, op) =>
      call<ReleaseOutcome>(
        { op: 'release', lease: { key: lease.key, token: lease.token } },
        op?.signal,
      ),
    inspect: (key, op) => call<LockInfo | null>({ op: 'inspect', key }, op?.signal),
    async close() {
      closed = true;
      failAll('closed');
      socket?.destroy();
    },
  };
}

function toError(error: { code: string; message: string }): Error {
  if (error.code === 'UNAVAILABLE') return new BackendUnavailableError(error.message);
  return new BackendError(`memory server: ${error.message}`);
}

/** The backend module contract: a backend from DISTLOCK_MEMORY_SERVER. */
export function createBackend(): LockBackend {
  const address = process.env.DISTLOCK_MEMORY_SERVER;
  if (!address) throw new Error('set DISTLOCK_MEMORY_SERVER (host:port)');
  return remoteMemoryBackend(address);
}
