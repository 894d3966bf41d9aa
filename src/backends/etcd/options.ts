/**
 * Options of the etcd backend, their defaults (one frozen object) and eager validation, plus the
 * `etcd://` URL parser.
 */
import type { Etcd3, IOptions } from 'etcd3';
import { InvalidArgumentError } from '../../core/errors.js';

/** Options of {@link etcdBackend}. Pass either `client` or `url`. */
export interface EtcdBackendOptions {
  /**
   * An `etcd3` client to use. It stays open when the backend closes.
   * @default none: `url` is required instead
   */
  readonly client?: Etcd3;
  /**
   * `etcd://[user:password@]host:port[,host:port…]`: the backend builds (and on `close()` closes)
   * its own client for these endpoints.
   * @default none: `client` is required instead
   */
  readonly url?: string;
  /**
   * Prefix of every etcd key the backend writes; lock `k` lives under `<namespace><k>/`.
   * @default 'distlock/'
   */
  readonly namespace?: string;
  /**
   * TTL of the session: the one etcd lease that every lock and queue entry of this backend is put
   * under, kept alive every `sessionTtlMs / 3`. If this process dies or loses etcd, its locks are
   * freed by etcd after at most this long; locally they are signalled lost (`AcquireResult.lost`)
   * by the session's deadline measured from the last keep-alive that got through. etcd rounds
   * TTLs up to whole seconds and to its minimum (2 s with default election settings).
   * @default 10_000
   */
  readonly sessionTtlMs?: number;
  /**
   * gRPC deadline of each request to etcd.
   * @default 5_000
   */
  readonly operationTimeoutMs?: number;
  /**
   * Attempts of one operation on a transient error (leader election, connection reset), where a
   * retry is safe. Waiting in the queue retries for as long as the wait lasts.
   * @default 4
   */
  readonly retryTries?: number;
  /**
   * Delay before the second attempt; it doubles for each further attempt.
   * @default 100
   */
  readonly retryDelayMs?: number;
  /**
   * A waiter re-checks its predecessor this often even when no watch event arrives, in case a
   * watch stream is silently stuck (e.g. on a partitioned member).
   * @default 2_000
   */
  readonly recheckMs?: number;
  /**
   * Observes the session: each lease grant, each keep-alive that got through (with the session's
   * new local deadline) and its loss. Exceptions thrown by it are ignored.
   * @default none
   */
  readonly onSessionEvent?: (event: EtcdSessionEvent) => void;
}

/** What {@link EtcdBackendOptions.onSessionEvent} receives. */
export type EtcdSessionEvent =
  | { readonly type: 'granted'; readonly leaseId: string; readonly deadline: number }
  | { readonly type: 'kept-alive'; readonly leaseId: string; readonly deadline: number }
  | { readonly type: 'lost'; readonly leaseId: string; readonly error: Error };

/** Every default of the etcd backend. */
export const ETCD_DEFAULTS = Object.freeze({
  namespace: 'distlock/',
  sessionTtlMs: 10_000,
  operationTimeoutMs: 5_000,
  retryTries: 4,
  retryDelayMs: 100,
  recheckMs: 2_000,
});

/** Options with every default applied. */
export interface ResolvedEtcdOptions {
  readonly namespace: string;
  readonly sessionTtlMs: number;
  readonly operationTimeoutMs: number;
  readonly retryTries: number;
  readonly retryDelayMs: number;
  readonly recheckMs: number;
  readonly onSessionEvent: ((event: EtcdSessionEvent) => void) | undefined;
}

function integer(value: unknown, option: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      option,
      `must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

/** Validate every option except the connection (`client` / `url`). */
export function resolveOptions(options: EtcdBackendOptions): ResolvedEtcdOptions {
  const namespace = options.namespace ?? ETCD_DEFAULTS.namespace;
  if (typeof namespace !== 'string' || namespace.length === 0) {
    throw new InvalidArgumentError('namespace', 'must be a non-empty string');
  }
  const onSessionEvent = options.onSessionEvent;
  if (onSessionEvent !== undefined && typeof onSessionEvent !== 'function') {
    throw new InvalidArgumentError('onSessionEvent', 'must be a function');
  }
  return {
    namespace,
    sessionTtlMs: integer(
      options.sessionTtlMs ?? ETCD_DEFAULTS.sessionTtlMs,
      'sessionTtlMs',
      1_000,
      24 * 3_600_000,
    ),
    operationTimeoutMs: integer(
      options.operationTimeoutMs ?? ETCD_DEFAULTS.operationTimeoutMs,
      'operationTimeoutMs',
      1,
      3_600_000,
    ),
    retryTries: integer(options.retryTries ?? ETCD_DEFAULTS.retryTries, 'retryTries', 1, 100),
    retryDelayMs: integer(
      options.retryDelayMs ?? ETCD_DEFAULTS.retryDelayMs,
      'retryDelayMs',
      0,
      60_000,
    ),
    recheckMs: integer(options.recheckMs ?? ETCD_DEFAULTS.recheckMs, 'recheckMs', 10, 3_600_000),
    onSessionEvent,
  };
}

const HOST_PORT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * Parse `etcd://[user:password@]host:port[,host:port…]` into `etcd3` client options. Errors never
 * repeat the URL's credentials.
 */
export function parseEtcdUrl(url: unknown): IOptions {
  if (typeof url !== 'string') throw new InvalidArgumentError('url', 'must be a string');
  const match = /^etcd:\/\/(?:([^@/]*)@)?([^/?#]*)\/?$/i.exec(url.trim());
  if (!match) {
    throw new InvalidArgumentError(
      'url',
      `expected etcd://host:port[,host:port…], got "${redactEtcdUrl(url)}"`,
    );
  }
  const [, userInfo, hostList = ''] = match;
  const hosts = hostList.split(',').map((h) => h.trim());
  for (const host of hosts) {
    const port = HOST_PORT.exec(host)?.[1];
    if (port === undefined || Number(port) < 1 || Number(port) > 65_535) {
      throw new InvalidArgumentError(
        'url',
        `"${host}" is not host:port in "${redactEtcdUrl(url)}" (expected etcd://host:port[,host:port…])`,
      );
    }
  }
  const options: IOptions = { hosts: hosts.map((h) => `http://${h}`) };
  if (userInfo !== undefined && userInfo !== '') {
    const colon = userInfo.indexOf(':');
    if (colon <= 0) {
      throw new InvalidArgumentError('url', 'credentials must be user:password');
    }
    try {
      return {
        ...options,
        auth: {
          username: decodeURIComponent(userInfo.slice(0, colon)),
          password: decodeURIComponent(userInfo.slice(colon + 1)),
        },
      };
    } catch {
      throw new InvalidArgumentError('url', 'credentials are not valid percent-encoding');
    }
  }
  return options;
}

/** The URL with anything before its last `@` (user and password) replaced by `***`. */
export function redactEtcdUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const schemeEnd = url.indexOf('://');
  const start = schemeEnd >= 0 && schemeEnd < at ? schemeEnd + 3 : 0;
  return `${url.slice(0, start)}***${url.slice(at)}`;
}
