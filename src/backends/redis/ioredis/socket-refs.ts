/**
 * Keeps the process alive only while the backend has work: its own connections' sockets (the
 * client it built from a URL, its blocking connections; never a client the user passed in) are
 * `ref()`ed while a call is in flight or a queued wait is in progress, and `unref()`ed otherwise,
 * so that a script that forgets `close()` exits once its locks are released, as it does on the
 * other backends. A connection's reconnect timer (ioredis keeps it in `reconnectTimeout`, which
 * it does not unref) follows the same rule, so a script does not stay up retrying a server that
 * went away while it had nothing to do.
 */
import type { Redis } from 'ioredis';
import type { BusyListener } from './script-runner.js';

/** What a connection exposes that keeps the event loop alive. */
interface Handles {
  readonly stream?: { ref?: () => unknown; unref?: () => unknown } | undefined;
  readonly reconnectTimeout?: { ref?: () => unknown; unref?: () => unknown } | null | undefined;
}

/** Refs and unrefs the owned connections' handles as work starts and stops (see the module doc). */
export class SocketRefs implements BusyListener {
  readonly #connections = new Set<Redis>();
  #holds = 0;

  /** Follow `connection`: its socket (and every later one, after a reconnect) obeys the rule. */
  own(connection: Redis): void {
    this.#connections.add(connection);
    const apply = () => this.#apply(connection);
    // A reconnect makes a new socket, referenced by default; 'reconnecting' has just set the timer.
    connection.on('connect', apply);
    connection.on('reconnecting', apply);
    this.#apply(connection);
  }

  /** Stop following `connection` (closed). */
  disown(connection: Redis): void {
    this.#connections.delete(connection);
  }

  /** Something is in flight: keep the process alive until the matching {@link idle}. */
  busy(): void {
    if (this.#holds++ === 0) this.#applyAll();
  }

  idle(): void {
    if (this.#holds > 0 && --this.#holds === 0) this.#applyAll();
  }

  #applyAll(): void {
    for (const connection of this.#connections) this.#apply(connection);
  }

  #apply(connection: Redis): void {
    const { stream, reconnectTimeout } = connection as unknown as Handles;
    if (this.#holds > 0) {
      stream?.ref?.();
      reconnectTimeout?.ref?.();
    } else {
      stream?.unref?.();
      reconnectTimeout?.unref?.();
    }
  }
}
