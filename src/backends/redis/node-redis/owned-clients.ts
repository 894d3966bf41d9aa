/**
 * Keeps the process alive only while the backend has work, for the node-redis clients it owns (the
 * one built from a URL, the blocking connections; never a client the user passed in): `ref()`ed
 * while a call is in flight or a queued wait is in progress, `unref()`ed otherwise (node-redis
 * applies it to every later socket too), so a script that forgets `close()` still exits.
 */
import type { NodeRedisClient } from './client.js';
import type { BusyListener } from './script-runner.js';

export class OwnedClients implements BusyListener {
  readonly #clients = new Set<NodeRedisClient>();
  #holds = 0;

  own(client: NodeRedisClient): void {
    this.#clients.add(client);
    this.#apply(client);
  }

  disown(client: NodeRedisClient): void {
    this.#clients.delete(client);
  }

  busy(): void {
    if (this.#holds++ === 0) for (const client of this.#clients) this.#apply(client);
  }

  idle(): void {
    if (this.#holds > 0 && --this.#holds === 0) {
      for (const client of this.#clients) this.#apply(client);
    }
  }

  #apply(client: NodeRedisClient): void {
    if (this.#holds > 0) client.ref();
    else client.unref();
  }
}
