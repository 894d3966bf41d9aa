/**
 * Opening a backend from a URL (what the `distlock` command and `DISTLOCK_URL` use), redacting
 * secrets out of URLs and text, and parsing human durations such as `30s`.
 *
 * Each backend module is loaded with a dynamic `import()` only when its scheme is asked for, so the
 * core never loads a client library (ioredis, etcd3) that the caller does not use.
 */
import { fileURLToPath } from 'node:url';
import { defaultLockDirectory } from './backends/files/lock-directory.js';
import type { AzureBlobCommonOptions } from './backends/azure-blob/index.js';
import type { EtcdBackendOptions } from './backends/etcd/index.js';
import type { FilesBackendOptions } from './backends/files/index.js';
import type { PostgresBackendOptions } from './backends/postgres/index.js';
import type { RedisBackendOptions } from './backends/redis/index.js';
import type { RedlockBackendOptions } from './backends/redlock/index.js';
import type { LockBackend } from './core/backend.js';
import { InvalidArgumentError } from './core/errors.js';
import { redactSecrets } from './core/redact.js';

/** Options of {@link openBackend}. */
export interface OpenBackendOptions {
  /**
   * Directory used when no URL is given (or the URL is `file:` without a path).
   * @default {@link defaultLockDir}()
   */
  readonly defaultDir?: string;
  /** Extra options for the files backend (the directory comes from the URL). @default none */
  readonly files?: Omit<FilesBackendOptions, 'dir'>;
  /** Extra options for the Redis backend (the connection comes from the URL). @default none */
  readonly redis?: Omit<RedisBackendOptions, 'url' | 'client'>;
  /** Extra options for the Redlock backend (the nodes come from the URL). @default none */
  readonly redlock?: Omit<RedlockBackendOptions, 'urls' | 'clients'>;
  /** Extra options for the etcd backend (the endpoints come from the URL). @default none */
  readonly etcd?: Omit<EtcdBackendOptions, 'url' | 'client'>;
  /** Extra options for the PostgreSQL backend (the connection comes from the URL). @default none */
  readonly postgres?: Omit<PostgresBackendOptions, 'url' | 'pool'>;
  /** Extra options for the Azure blob backend (the account comes from the URL). @default none */
  readonly azureBlob?: AzureBlobCommonOptions;
  /**
   * The storage account of `azblob://CONTAINER` URLs: an Azure Storage connection string.
   * @default process.env.AZURE_STORAGE_CONNECTION_STRING (the variable the Azure CLI reads)
   */
  readonly azureConnectionString?: string;
}

/**
 * The directory the files backend uses when no URL is given: the files backend's own default,
 * private to the current user (`$XDG_RUNTIME_DIR/distlock`, else `<os temp dir>/distlock-<uid>`).
 */
export function defaultLockDir(): string {
  return defaultLockDirectory();
}

const SUPPORTED_FORMS =
  'file:///path, memory:, redis://host:port, rediss://host:port, redis+cluster://host:port,host:port…, redis+sentinel://host:port,host:port…/mastername, redlock://host:port,host:port,host:port, etcd://host:port[,host:port…], postgres://host:port/db, azblob://CONTAINER, https://ACCOUNT.blob.core.windows.net/CONTAINER?SAS';

/**
 * Open the backend a URL names. Supported forms:
 * - `file:///var/lock/myapp` — lock files in a directory (processes on one host); the default,
 *   under the OS temp dir, when `url` is empty or undefined;
 * - `memory:` — in this process only (for trying things out);
 * - `redis://[user:password@]host:port[/db]` and `rediss://…` (TLS);
 * - `redis+cluster://[user:password@]host1:port1,host2:port2` — a Redis Cluster through these
 *   startup nodes (`rediss+cluster://` with TLS);
 * - `redis+sentinel://[user:password@]host1:port1,host2:port2/mastername` — the master these
 *   Sentinels name, followed across failovers (`rediss+sentinel://` with TLS);
 * - `redlock://[user:password@]host1:port1,host2:port2,host3:port3[/db]` — Redlock over an odd
 *   number (≥ 3) of independent Redis masters, each reached as `redis://[user:password@]host:port[/db]`;
 * - `etcd://host1:port1,host2:port2` — an etcd cluster's client endpoints;
 * - `postgres://[user:password@]host:port/database` and `postgresql://…` — a lease table in
 *   PostgreSQL (lease mode);
 * - `azblob://CONTAINER` — blob leases in that container of the storage account named by the
 *   connection string in `AZURE_STORAGE_CONNECTION_STRING` (or `options.azureConnectionString`);
 * - `https://ACCOUNT.blob.core.windows.net/CONTAINER?sv=…&sig=…` (or `http://…`) — blob leases in
 *   the container that URL names, with the SAS token in it.
 *
 * A bare Azure connection string is refused with a message saying how to name the container.
 * Every error names the URL with its password, account key or SAS signature replaced by `***`.
 *
 * @throws {InvalidArgumentError} (option `url`) for a malformed URL or an unknown scheme;
 *   {@link MissingClientLibraryError} (an `InvalidArgumentError`) when the client library the
 *   scheme needs is not installed.
 * @example
 * ```ts
 * const backend = await openBackend(process.env.DISTLOCK_URL ?? 'file:///tmp/locks');
 * const locks = createLocks({ backend });
 * ```
 */
export async function openBackend(
  url: string | undefined,
  options: OpenBackendOptions = {},
): Promise<LockBackend> {
  const text = (url ?? '').trim();
  if (text === '') return openFiles(options.defaultDir ?? defaultLockDir(), options);

  if (isAzureConnectionString(text)) {
    throw new InvalidArgumentError(
      'url',
      `an Azure Storage connection string names no container (${redactUrl(text)}): put it in AZURE_STORAGE_CONNECTION_STRING and use azblob://CONTAINER`,
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}" is not a backend URL; supported: ${SUPPORTED_FORMS}`,
    );
  }

  switch (scheme) {
    case 'file':
      return openFiles(fileUrlToDir(text, options.defaultDir ?? defaultLockDir()), options);
    case 'memory': {
      const { memoryBackend } = await import('./backends/memory/index.js');
      return memoryBackend();
    }
    case 'redis':
    case 'rediss':
    case 'redis+cluster':
    case 'rediss+cluster':
    case 'redis+sentinel':
    case 'rediss+sentinel': {
      requireHost(text);
      // ioredis is loaded when the client is built, not when the module is imported.
      return importNeeding(scheme, 'ioredis', async () => {
        const { redisBackend } = await import('./backends/redis/index.js');
        return redisBackend({ ...options.redis, url: text });
      });
    }
    case 'redlock': {
      const urls = redlockNodeUrls(text);
      const { redlockBackend } = await importNeeding(
        scheme,
        'ioredis',
        () => import('./backends/redlock/index.js'),
      );
      try {
        return redlockBackend({ ...options.redlock, urls });
      } catch (error) {
        // The node list comes from the URL: name the option the caller wrote.
        if (!(error instanceof InvalidArgumentError) || error.option !== 'urls') throw error;
        throw new InvalidArgumentError('url', `${error.message} (${redactUrl(text)})`);
      }
    }
    case 'etcd': {
      requireHost(text);
      const { etcdBackend } = await importNeeding(
        scheme,
        'etcd3',
        () => import('./backends/etcd/index.js'),
      );
      return etcdBackend({ ...options.etcd, url: text });
    }
    case 'postgres':
    case 'postgresql': {
      requireHost(text);
      const { postgresBackend } = await import('./backends/postgres/index.js');
      return postgresBackend({ ...options.postgres, url: text });
    }
    case 'azblob':
      return openAzureBlob(text, options);
    case 'https':
    case 'http': {
      const { azureBlobBackend } = await importNeeding(
        scheme,
        '@azure/storage-blob',
        () => import('./backends/azure-blob/index.js'),
      );
      return azureBlobBackend({ ...options.azureBlob, url: text });
    }
    default: {
      throw new InvalidArgumentError(
        'url',
        `unknown backend "${scheme}:" in "${redactUrl(text)}"; supported: ${SUPPORTED_FORMS}`,
      );
    }
  }
}

/**
 * A backend's optional client library (an optional peer dependency) is not installed. The message
 * says which package to install; `packageName` names it.
 */
export class MissingClientLibraryError extends InvalidArgumentError {
  /** The npm package to install, e.g. `ioredis`. */
  readonly packageName: string;
  /** The URL scheme that needs it, e.g. `redis`. */
  readonly scheme: string;

  constructor(scheme: string, packageName: string, options: { cause?: unknown } = {}) {
    super(
      'url',
      `${scheme}:// URLs need the "${packageName}" package, which is not installed: npm i ${packageName}`,
      options,
    );
    this.packageName = packageName;
    this.scheme = scheme;
  }
}

/** True when `error` says that `packageName` itself (not something inside it) cannot be found. */
function isMissingPackage(error: unknown, packageName: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    typeof message === 'string' &&
    message.includes(`'${packageName}'`)
  );
}

/** Load a backend module that imports `packageName`; its absence is a typed, explained error. */
async function importNeeding<T>(
  scheme: string,
  packageName: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    // A backend that loads its library lazily wraps the resolver's error in a typed one.
    const cause = (error as { cause?: unknown } | null)?.cause;
    if (isMissingPackage(error, packageName) || isMissingPackage(cause, packageName)) {
      throw new MissingClientLibraryError(scheme, packageName, { cause: error });
    }
    throw error;
  }
}

/** `azblob://CONTAINER`: the account from the connection string, never from the URL. */
async function openAzureBlob(text: string, options: OpenBackendOptions): Promise<LockBackend> {
  const match = /^azblob:\/\/([^/?#]*)\/?$/i.exec(text);
  const container = match?.[1] ?? '';
  if (container.includes('@') || container.includes(':')) {
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}" carries credentials: azblob://CONTAINER takes the account from AZURE_STORAGE_CONNECTION_STRING`,
    );
  }
  if (container === '') {
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}" names no container (azblob://CONTAINER)`,
    );
  }
  if (!/^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(container)) {
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}": the container name must be 3–63 lowercase letters, digits and single hyphens`,
    );
  }
  const connectionString =
    options.azureConnectionString ?? process.env.AZURE_STORAGE_CONNECTION_STRING;
  if (!connectionString) {
    throw new InvalidArgumentError(
      'url',
      `${text} takes the storage account from AZURE_STORAGE_CONNECTION_STRING, which is not set`,
    );
  }
  const { azureBlobBackend } = await importNeeding(
    'azblob',
    '@azure/storage-blob',
    () => import('./backends/azure-blob/index.js'),
  );
  try {
    return azureBlobBackend({ ...options.azureBlob, connectionString, containerName: container });
  } catch (error) {
    // The option names are the backend's; for a URL caller, the URL (or its variable) is at fault.
    if (error instanceof InvalidArgumentError && error.option !== 'url') {
      throw new InvalidArgumentError(
        'url',
        `${redactUrl(text)} with AZURE_STORAGE_CONNECTION_STRING: ${error.message}`,
      );
    }
    throw error;
  }
}

async function openFiles(dir: string, options: OpenBackendOptions): Promise<LockBackend> {
  const { filesBackend } = await import('./backends/files/index.js');
  return filesBackend({ ...options.files, dir });
}

/** `file:///abs/path` → `/abs/path`; `file:` alone → the default directory. */
function fileUrlToDir(text: string, defaultDir: string): string {
  if (/^file:(\/\/)?$/i.test(text)) return defaultDir;
  if (!/^file:\/\//i.test(text)) {
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}" is not a file URL; write file:///absolute/path/to/dir`,
    );
  }
  try {
    return fileURLToPath(text);
  } catch (error) {
    // fileURLToPath rejects a host other than localhost ("file://var/lock" is host "var").
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}" is not a usable file URL (${(error as Error).message}); write file:///absolute/path`,
    );
  }
}

/** `scheme://` followed by at least a host; the backend itself validates the rest. */
function requireHost(text: string): void {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(text)?.[1] ?? '';
  // Userinfo ends at the last '@', as URL parsers read it (an unencoded '@' in a password).
  const hosts = authority.slice(authority.lastIndexOf('@') + 1);
  if (hosts === '') {
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}" names no host (scheme://host:port)`,
    );
  }
  for (const endpoint of hosts.split(',')) {
    // host, host:port or [v6]:port, with a numeric port if any.
    if (!/^(?:\[[0-9a-f:.]+\]|[^:[\]\s]+)(?::\d{1,5})?$/i.test(endpoint)) {
      throw new InvalidArgumentError(
        'url',
        `"${redactUrl(text)}" has a malformed host list "${hosts}" (expected host:port[,host:port…])`,
      );
    }
  }
}

function isAzureConnectionString(text: string): boolean {
  return /(^|;)\s*(DefaultEndpointsProtocol|AccountKey|UseDevelopmentStorage)=/i.test(text);
}

export { redactSecrets, secretsOf } from './core/redact.js';

/**
 * A backend URL (or Azure connection string) fit to show: its password replaced by `***`.
 *
 * @example
 * ```ts
 * redactUrl('rediss://default:s3cret@cache:6380/0'); // 'rediss://default:***@cache:6380/0'
 * ```
 */
export function redactUrl(url: string): string {
  return redactSecrets(url);
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
});

/**
 * Parse a human duration into whole milliseconds: `500ms`, `30s`, `1.5s`, `5m`, `1h`, or a bare
 * number of **seconds** (`5`, `2.5`), as `flock -w`, `timeout` and `etcdctl --ttl` read one.
 * Rounds to the nearest millisecond.
 *
 * @param option the option name to blame in the error, e.g. `--ttl`.
 * @throws {InvalidArgumentError} for anything else (negative, empty, unknown unit, too large).
 * @example
 * ```ts
 * parseDuration('30s'); // 30000
 * parseDuration('5'); // 5000
 * ```
 */
export function parseDuration(text: string, option = 'duration'): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$/i.exec(text);
  if (match === null) {
    throw new InvalidArgumentError(
      option,
      `"${text}" is not a duration; use e.g. 500ms, 30s, 5m, 1h, or a number of seconds`,
    );
  }
  const unit = (match[2] ?? 's').toLowerCase();
  const ms = Math.round(Number(match[1]) * (DURATION_UNITS_MS[unit] ?? 1));
  if (!Number.isSafeInteger(ms) || ms > 2_147_483_647) {
    // Node timers cannot wait longer than 2^31-1 ms (about 24.8 days).
    throw new InvalidArgumentError(option, `"${text}" is too long (at most 24 days)`);
  }
  return ms;
}

/**
 * The `redis://` URL of each node of `redlock://[user:password@]h1:p1,h2:p2,…[/db]` (the
 * credentials and database apply to every node). Never echoes the password.
 */
function redlockNodeUrls(text: string): string[] {
  const rest = text.replace(/^redlock:\/\//i, '');
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at + 1);
  const hosts = (at < 0 ? authority : authority.slice(at + 1)).split(',');
  if (!/^redlock:\/\//i.test(text) || hosts.some((host) => !/^[^\s:/@]+(:\d+)?$/.test(host))) {
    throw new InvalidArgumentError(
      'url',
      `"${redactUrl(text)}" is not a redlock URL: use redlock://host:port,host:port,host:port`,
    );
  }
  return hosts.map((host) => `redis://${userinfo}${host}${path}`);
}
