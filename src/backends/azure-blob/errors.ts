/**
 * Maps `@azure/storage-blob` failures onto distlock's typed errors. The SDK's `RestError` carries
 * the request and response it failed on (URLs with a SAS signature, headers with the shared-key
 * signature): it never leaves this backend as it is, only as `safeCause`'s copy (message, `code`,
 * status), with the account key and SAS signature replaced by `***` wherever they appear.
 */
import { BackendError, BackendUnavailableError, LockError } from '../../core/errors.js';
import { redactSecrets, rootCause, safeCause } from '../../core/redact.js';

/** The HTTP status of a failed call, or `undefined` when no response arrived (a network error). */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status > 0 ? status : undefined;
}

/** Azure's error code (`LeaseAlreadyPresent`, `BlobNotFound`, …) or a network code. */
export function codeOf(error: unknown): string | undefined {
  const { code, details } = (error ?? {}) as { code?: unknown; details?: { errorCode?: unknown } };
  if (typeof code === 'string') return code;
  return typeof details?.errorCode === 'string' ? details.errorCode : undefined;
}

/** The storage account refused the credentials (or their permissions). Not retryable. */
export class AzureAuthError extends BackendError {
  constructor(operation: string, status: number, code: string | undefined, cause: unknown) {
    super(
      `azure-blob ${operation}: the storage account refused the request (${status} ${code ?? ''}): ` +
        'check the account key, the SAS token (signature, expiry, permissions: read, write, ' +
        'create, list) or the identity',
      { cause },
    );
  }
}

/** Statuses after which the same call may succeed: timeouts, throttling, server trouble. */
const TRANSIENT_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * The typed error for `error`, thrown by the SDK during `operation`. A response-less failure
 * (connection refused, reset, DNS) and a transient status are retryable
 * `BackendUnavailableError`s; 401 and 403 are {@link AzureAuthError}s; anything else Azure
 * answered is a `BackendError`.
 */
export function toLockError(
  error: unknown,
  operation: string,
  secrets: readonly string[],
): LockError {
  if (error instanceof LockError) return error;
  const cause = safeCause(error, secrets);
  const status = statusOf(error);
  const code = codeOf(error);
  if (status === 401 || status === 403) return new AzureAuthError(operation, status, code, cause);
  const root = rootCause(cause) as { message?: string };
  const detail = redactSecrets(
    String(root?.message ?? code ?? 'unknown error').split('\n')[0]!,
    secrets,
  );
  if (status === undefined || TRANSIENT_STATUSES.has(status)) {
    return new BackendUnavailableError(
      `azure-blob ${operation}: the storage account could not be reached or is busy (${status ?? code ?? 'no response'}): ${detail}`,
      { cause },
    );
  }
  return new BackendError(`azure-blob ${operation}: ${status} ${code ?? ''}: ${detail}`, { cause });
}
