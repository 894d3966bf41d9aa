/**
 * The `etcd3` client a backend builds for itself from an `etcd://` URL, with fault handling that
 * recovers as soon as etcd does.
 *
 * etcd3's defaults open a host's circuit for 5 s after 3 failures and grow the watch stream's
 * reconnect delay to 30 s: after a short outage, every call failed with `BrokenCircuitError` for
 * seconds after etcd was back, and waiters were only woken by their periodic re-check. Here a
 * host's circuit lets a trial call through after {@link HALF_OPEN_AFTER_MS}, and watch streams
 * reconnect within {@link WATCH_BACKOFF_MAX_MS}. Retrying with a delay, up to each call's deadline,
 * is the backend's own loop (`calls.ts`); etcd3's global policy only moves a failed call on to the
 * next host at once. A client passed in by the user keeps the policies it was built with.
 */
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  type IBackoff,
} from 'cockatiel';

/** How long a host's open circuit refuses calls before it lets a trial call through. */
export const HALF_OPEN_AFTER_MS = 500;
/** The longest delay before a broken watch stream is opened again. */
export const WATCH_BACKOFF_MAX_MS = 1_000;

/** An `Etcd3` client for `options` (from `parseEtcdUrl`) with the fault handling above. */
export function createEtcdClient(options: IOptions): Etcd3 {
  const hosts = typeof options.hosts === 'string' ? [options.hosts] : options.hosts;
  const handled = handleWhen(isRecoverableError);
  return new Etcd3({
    ...options,
    faultHandling: {
      host: () =>
        circuitBreaker(handled, {
          halfOpenAfter: HALF_OPEN_AFTER_MS,
          breaker: new ConsecutiveBreaker(3),
        }),
      // One immediate try on each other host: a dead member costs no delay when others are up.
      global: retry(handled, { maxAttempts: Math.max(0, hosts.length - 1) }),
      // etcd3 types this as a backoff but uses it as a factory (`.next()`), as its own default,
      // `new ExponentialBackoff()`, is.
      watchBackoff: new ExponentialBackoff({
        initialDelay: 50,
        maxDelay: WATCH_BACKOFF_MAX_MS,
      }) as unknown as IBackoff<unknown>,
    },
  });
}

/** `host:port` of each endpoint in `options` (for messages; never credentials). */
export function endpointsOf(options: IOptions): string[] {
  const hosts = typeof options.hosts === 'string' ? [options.hosts] : options.hosts;
  return hosts.map((host) => host.replace(/^[a-z]+:\/\//i, ''));
}
