/**
 * Pub/sub for {@link RedisConnection.subscribe} over ioredis: one subscriber connection per
 * client (a duplicate, opened on the first subscription), shared by every channel, with one
 * `SUBSCRIBE` per channel however many listeners it has. Best effort by design: listeners are
 * told of messages, never of errors (a missed wake-up only delays a waiter until its next poll).
 */
import type { Redis } from 'ioredis';
import type { SocketRefs } from './socket-refs.js';

/** The channels of one client and their listeners. */
export class Subscriber {
  readonly #source: Redis;
  readonly #refs: SocketRefs;
  #connection: Redis | undefined;
  readonly #listeners = new Map<string, Set<() => void>>();
  #closed = false;

  constructor(source: Redis, refs: SocketRefs) {
    this.#source = source;
    this.#refs = refs;
  }

  async subscribe(channel: string, onMessage: () => void): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error('closed');
    const connection = this.#open();
    let listeners = this.#listeners.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    // A fresh function per subscription, so that one listener subscribed twice is removed once.
    const listener = () => onMessage();
    listeners.add(listener);
    if (listeners.size === 1) await connection.subscribe(channel);
    return async () => {
      const current = this.#listeners.get(channel);
      if (!current?.delete(listener) || current.size > 0) return;
      this.#listeners.delete(channel);
      if (!this.#closed) await connection.unsubscribe(channel).catch(() => undefined);
    };
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    const connection = this.#connection;
    if (!connection) return;
    this.#refs.disown(connection);
    connection.disconnect();
  }

  #open(): Redis {
    if (this.#connection) return this.#connection;
    // Failing fast while down (as the client does), resubscribing after a reconnect.
    const connection = this.#source.duplicate({ lazyConnect: false });
    connection.on('error', () => undefined);
    connection.on('message', (channel: string) => {
      for (const listener of this.#listeners.get(channel) ?? []) listener();
    });
    this.#refs.own(connection);
    this.#connection = connection;
    return connection;
  }
}
