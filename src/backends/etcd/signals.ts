/**
 * Small abort-signal helpers of the etcd backend.
 */

/** `promise`, or a rejection with `signal.reason` as soon as the signal aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as unknown);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as unknown);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Resolve after `ms`, or reject with the reason of the first of `signals` to abort (without
 * `AbortSignal.any`, which Node 20.0 to 20.2 lack). The timer goes as soon as a signal aborts.
 */
export function pause(ms: number, signals: ReadonlyArray<AbortSignal | undefined>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const listening: AbortSignal[] = [];
    const done = () => {
      clearTimeout(timer);
      for (const signal of listening) signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (event: Event) => {
      done();
      reject((event.target as AbortSignal).reason as unknown);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    for (const signal of signals) {
      if (!signal) continue;
      if (signal.aborted) {
        done();
        reject(signal.reason as unknown);
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      listening.push(signal);
    }
  });
}
