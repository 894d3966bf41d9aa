/**
 * The options of `azureBlobBackend` and how they become a `ContainerClient`: the user's own, or one
 * built from a connection string or a container URL with a SAS token. Clients the backend builds
 * retry a failed request once, at once (the SDK's default retries would wait for seconds on an
 * unreachable account; the core retries waits, by deadline). Secrets (the account key, the SAS signature) are collected
 * so that every error can be scrubbed of them.
 */
import {
  AnonymousCredential,
  BlobServiceClient,
  ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { InvalidArgumentError } from '../../core/errors.js';
import { redactSecrets, secretsOf } from '../../core/redact.js';

/** Options shared by every way of naming the container. */
export interface AzureBlobCommonOptions {
  /**
   * Prepended to every blob name, so that locks can share a container with other data.
   * @default 'distlock/'
   */
  readonly prefix?: string;
  /**
   * Create the container on first use if it does not exist (needs a credential allowed to create
   * containers; a container-scoped SAS is not).
   * @default true
   */
  readonly createContainer?: boolean;
  /**
   * The longest one HTTP request to the account may take, for clients the backend builds
   * (the core bounds every call anyway, by `operationTimeoutMs`).
   * @default 10_000
   */
  readonly requestTimeoutMs?: number;
}

/** Where the locks live: a user's client, a connection string and container name, or a container URL. */
export type AzureBlobBackendOptions = AzureBlobCommonOptions &
  (
    | {
        /** Your container client; it stays yours (`close()` leaves it alone). Its SDK retry policy applies. */
        readonly container: ContainerClient;
      }
    | {
        /** An account connection string (`DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…`, or one with a SAS). */
        readonly connectionString: string;
        /** The container within that account. */
        readonly containerName: string;
      }
    | {
        /** A container URL, usually with a SAS token: `https://acct.blob.core.windows.net/locks?sv=…&sig=…`. */
        readonly url: string;
      }
  );

/** Defaults of {@link AzureBlobCommonOptions}. */
export const AZURE_BLOB_DEFAULTS = Object.freeze({
  prefix: 'distlock/',
  createContainer: true,
  requestTimeoutMs: 10_000,
});

/** The options, resolved. */
export interface ResolvedAzureBlobOptions {
  readonly container: ContainerClient;
  readonly prefix: string;
  readonly createContainer: boolean;
  /** Replaced by `***` in everything the backend throws. */
  readonly secrets: readonly string[];
}

export function resolveOptions(options: AzureBlobBackendOptions): ResolvedAzureBlobOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object');
  }
  const prefix = options.prefix ?? AZURE_BLOB_DEFAULTS.prefix;
  if (typeof prefix !== 'string' || prefix.length > 200 || /[\\]/.test(prefix)) {
    throw new InvalidArgumentError(
      'prefix',
      'must be a string of at most 200 characters, without "\\"',
    );
  }
  const createContainer = options.createContainer ?? AZURE_BLOB_DEFAULTS.createContainer;
  if (typeof createContainer !== 'boolean') {
    throw new InvalidArgumentError('createContainer', 'must be a boolean');
  }
  const timeout = options.requestTimeoutMs ?? AZURE_BLOB_DEFAULTS.requestTimeoutMs;
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw new InvalidArgumentError('requestTimeoutMs', 'must be a positive integer');
  }
  const pipeline: StoragePipelineOptions = {
    // One quick second try: a kept-alive connection that the server closed as it was reused
    // (ECONNRESET) is routine, and every call here is safe to repeat (a repeated lease call
    // with the same lease id is answered as the first; see backend.ts for the fence write).
    // Anything longer is the core's business, by deadline.
    retryOptions: {
      maxTries: 2,
      retryDelayInMs: 20,
      maxRetryDelayInMs: 20,
      tryTimeoutInMs: timeout,
    },
    userAgentOptions: { userAgentPrefix: 'distlock' },
  };
  if ('container' in options && options.container !== undefined) {
    const container = options.container;
    if (!(container instanceof ContainerClient)) {
      throw new InvalidArgumentError(
        'container',
        'must be a ContainerClient from @azure/storage-blob',
      );
    }
    return { container, prefix, createContainer, secrets: secretsOfClient(container) };
  }
  if ('connectionString' in options && options.connectionString !== undefined) {
    const { connectionString, containerName } = options;
    if (typeof connectionString !== 'string' || connectionString.trim() === '') {
      throw new InvalidArgumentError('connectionString', 'must be a non-empty string');
    }
    validateContainerName(containerName, 'containerName');
    const secrets = secretsOf(connectionString);
    let service: BlobServiceClient;
    try {
      service = BlobServiceClient.fromConnectionString(connectionString, pipeline);
    } catch (error) {
      throw new InvalidArgumentError(
        'connectionString',
        `is not a usable Azure Storage connection string (${redactSecrets((error as Error).message, secrets)}): ${redactSecrets(connectionString, secrets)}`,
      );
    }
    return {
      container: service.getContainerClient(containerName),
      prefix,
      createContainer,
      secrets,
    };
  }
  if ('url' in options && options.url !== undefined) {
    const { url } = options;
    const secrets = typeof url === 'string' ? secretsOf(url) : [];
    let parsed: URL;
    try {
      parsed = new URL(String(url));
    } catch {
      throw new InvalidArgumentError('url', `is not a URL: ${redactSecrets(String(url), secrets)}`);
    }
    const container = parsed.pathname
      .split('/')
      .filter((s) => s !== '')
      .at(-1);
    if (!/^https?:$/.test(parsed.protocol) || container === undefined) {
      throw new InvalidArgumentError(
        'url',
        `must be a container URL, https://ACCOUNT.blob.core.windows.net/CONTAINER?SAS: ${redactSecrets(url, secrets)}`,
      );
    }
    validateContainerName(container, 'url');
    return {
      container: new ContainerClient(url, new AnonymousCredential(), pipeline),
      prefix,
      createContainer,
      secrets,
    };
  }
  throw new InvalidArgumentError(
    'options',
    'give one of { container }, { connectionString, containerName } or { url }',
  );
}

/** Azure's container-name rules: 3–63 lowercase letters, digits and single hyphens. */
function validateContainerName(name: unknown, option: string): void {
  if (typeof name !== 'string' || !/^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) {
    throw new InvalidArgumentError(
      option,
      `the container name must be 3–63 lowercase letters, digits and single hyphens, got ${JSON.stringify(name)}`,
    );
  }
}

/** The secrets a user's client carries: a SAS in its URL, the key of a shared-key credential. */
function secretsOfClient(container: ContainerClient): string[] {
  const secrets = secretsOf(container.url);
  const key = (container.credential as { accountKey?: unknown }).accountKey;
  if (Buffer.isBuffer(key)) secrets.push(key.toString('base64'));
  return secrets;
}
