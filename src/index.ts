/**
 * distlock: distributed locks with fencing tokens, one API over many stores.
 *
 * @example
 * ```ts
 * import { createLocks } from 'distlock';
 * import { filesBackend } from 'distlock/files';
 *
 * const locks = createLocks({ backend: filesBackend() });
 * await locks.withLock('account:42', async (lease) => {
 *   // only one process on this host runs this at a time; lease.fence orders the holders
 * });
 * ```
 * @packageDocumentation
 */
export { createLocks, LockManager } from './core/locks.js';
export type {
  AcquireOptions,
  LockManagerOptions,
  LockState,
  TryAcquireOptions,
  WithLockOptions,
} from './core/locks.js';
export { ReadWriteLock } from './primitives/read-write-lock.js';
export { Semaphore } from './primitives/semaphore.js';
export type { SemaphoreOptions } from './primitives/semaphore.js';
export { MAX_LIMIT } from './core/kinds.js';
export { Lease } from './core/lease.js';
export { DEFAULTS, MAX_KEY_LENGTH } from './core/options.js';
export type { RetryOptions } from './core/options.js';
export type { TokenGenerator } from './core/tokens.js';
export { randomToken } from './core/tokens.js';
export type {
  AcquiredEvent,
  ExtendedEvent,
  LockEvent,
  LockEventHandler,
  LostEvent,
  ReleasedEvent,
  WaitedEvent,
} from './core/events.js';
export {
  BackendError,
  BackendUnavailableError,
  InvalidArgumentError,
  isLockError,
  LimitMismatchError,
  LockClosedError,
  LockError,
  LockLostError,
  LockTimeoutError,
  UnsupportedError,
} from './core/errors.js';
export { StaleFenceError } from './fence/stale-fence-error.js';
export type { LockErrorCode, LockLostReason } from './core/errors.js';
export type {
  AcquireRequest,
  AcquireResult,
  BackendCapabilities,
  ExtendResult,
  HolderInfo,
  LeaseRef,
  LockBackend,
  LockInfo,
  LockMode,
  OperationOptions,
  QueuedAcquireOptions,
  ReleaseOutcome,
  Unwatch,
} from './core/backend.js';
export { redactSecrets, safeCause, SanitizedError } from './core/redact.js';
