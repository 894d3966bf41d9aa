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
   * How lock keys map to etcd keys.
   * - `'etcd-recipe'`: etcd's own mutex recipe (Go's `concurrency.Mutex`, which `etcdctl lock`
   *   runs): lock `k` is the keys under `<namespace>k/`, one per holder or waiter, named after the
   *   lease they live under (`k/<lease hex>`). distlock, `etcdctl lock k` and Go services locking
   *   `k` exclude each other and queue in one create-revision order.
   * - `'distlock-v1'`: the layout of distlock 0.1, `<namespace><percent-encoded k>/<lease>-<n>`,
   *   which etcd's recipe does not see. Only to share locks with processes still on it.
   * @default 'etcd-recipe'
   */
  readonly layout?: EtcdKeyLayout;
  /**
   * Prefix of every etcd key the backend writes; lock `k` lives under `<namespace>k/`.
   * @default '' with the `etcd-recipe` layout (as `etcdctl lock k` does); 'distlock/' with `distlock-v1`
   */
  readonly namespace?: string;
  /**
   * An upper bound on the TTL of the etcd leases that locks and queue entries are put under.
   * Without it each holding lives under a lease of its own `ttlMs` rounded up to whole seconds
   * (at least etcd's minimum, 2 s with default election settings): a crashed holder's lock comes
   * free after that long. With it, after `min(ttlMs, sessionTtlMs)`; a live holder cut off from
   * etcd is then also signalled lost that early (`lease.signal`).
   * @default none: each lease's TTL is its request's `ttlMs`
   */
  readonly sessionTtlMs?: number;
  /**
   * gRPC deadline of each request to etcd.
   * @default 5_000
   */
  readonly operationTimeoutMs?: number;
  /**
   * Until etcd has answered this backend once, each request's deadline instead: how long the first
   * call waits for an etcd that accepts connections but never answers (a refused connection fails
   * at once), as Go's `DialTimeout`. The error's `cause` chain ends at the root cause
   * (`connect ECONNREFUSED host:port`, or an `ETIMEDOUT` naming the endpoints).
   * @default 3_000
   */
  readonly connectTimeoutMs?: number;
  /**
   * How long `release()` (and `close()`, revoking this backend's leases) keeps retrying through an
   * etcd outage before it gives up: a release then throws `BackendUnavailableError` while the
   * backend goes on deleting the entry in the background; either way etcd frees the lock when its
   * lease runs out. Never longer than that lease: after it there is nothing left to delete.
   * @default 10_000
   */
  readonly releaseTimeoutMs?: number;
  /**
   * Attempts of one operation on a transient error (leader election, connection reset), where a
   * retry is safe. Waiting in the queue retries for as long as the wait lasts; releasing for
   * `releaseTimeoutMs`.
   * @default 4
   */
  readonly retryTries?: number;
  /**
   * Delay before the second attempt; it doubles for each further attempt (at most 1 s).
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
   * Observes the sessions (one etcd lease per distinct lease TTL in use): each lease grant, each
   * keep-alive that got through (with the session's new local deadline) and its loss. Exceptions
   * thrown by it are ignored.
   * @default none
   */
  readonly onSessionEvent?: (event: EtcdSessionEvent) => void;
}

/** See {@link EtcdBackendOptions.layout}. */
export type EtcdKeyLayout = 'etcd-recipe' | 'distlock-v1';

/** What {@link EtcdBackendOptions.onSessionEvent} receives. */
export type EtcdSessionEvent =
  | { readonly type: 'granted'; readonly leaseId: string; readonly deadline: number }
  | { readonly type: 'kept-alive'; readonly leaseId: string; readonly deadline: number }
  | { readonly type: 'lost'; readonly leaseId: string; readonly error: Error };

/** Every default of the etcd backend. */
export const ETCD_DEFAULTS = Object.freeze({
  layout: 'etcd-recipe' as EtcdKeyLayout,
  /** Per layout: etcd's recipe has no namespace of its own. */
  namespace: Object.freeze({ 'etcd-recipe': '', 'distlock-v1': 'distlock/' }),
  operationTimeoutMs: 5_000,
  connectTimeoutMs: 3_000,
  releaseTimeoutMs: 10_000,
  retryTries: 4,
  retryDelayMs: 100,
  recheckMs: 2_000,
});

/** Options with every default applied. */
export interface ResolvedEtcdOptions {
  readonly layout: EtcdKeyLayout;
  readonly namespace: string;
  /** Upper bound on lease TTLs; `Infinity` when none was given. */
  readonly sessionTtlMs: number;
  readonly operationTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly releaseTimeoutMs: number;
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
  const layout = options.layout ?? ETCD_DEFAULTS.layout;
  if (layout !== 'etcd-recipe' && layout !== 'distlock-v1') {
    throw new InvalidArgumentError('layout', `must be 'etcd-recipe' or 'distlock-v1'`);
  }
  const namespace = options.namespace ?? ETCD_DEFAULTS.namespace[layout];
  if (typeof namespace !== 'string' || (layout === 'distlock-v1' && namespace.length === 0)) {
    throw new InvalidArgumentError(
      'namespace',
      layout === 'distlock-v1' ? 'must be a non-empty string' : 'must be a string',
    );
  }
  const onSessionEvent = options.onSessionEvent;
  if (onSessionEvent !== undefined && typeof onSessionEvent !== 'function') {
    throw new InvalidArgumentError('onSessionEvent', 'must be a function');
  }
  return {
    layout,
    namespace,
    sessionTtlMs:
      options.sessionTtlMs === undefined
        ? Infinity
        : integer(options.sessionTtlMs, 'sessionTtlMs', 1_000, 24 * 3_600_000),
    operationTimeoutMs: integer(
      options.operationTimeoutMs ?? ETCD_DEFAULTS.operationTimeoutMs,
      'operationTimeoutMs',
      1,
      3_600_000,
    ),
    connectTimeoutMs: integer(
      options.connectTimeoutMs ?? ETCD_DEFAULTS.connectTimeoutMs,
      'connectTimeoutMs',
      1,
      3_600_000,
    ),
    releaseTimeoutMs: integer(
      options.releaseTimeoutMs ?? ETCD_DEFAULTS.releaseTimeoutMs,
      'releaseTimeoutMs',
      0,
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
