/**
 * Pub/sub for {@link RedisConnection.subscribe} over ioredis: one subscriber connection per
 * client (a duplicate, opened on the first subscription), shared by every channel, with one
 * `SUBSCRIBE` per channel however many listeners it has, kept for a second after the last one
 * leaves (a contended lock's waiters come back to it at once). Best effort by design: listeners are
 * told of messages, never of errors (a missed wake-up only delays a waiter until its next poll).
 */
import type { Redis } from 'ioredis';
import type { SocketRefs } from './socket-refs.js';

/** How long a channel stays subscribed after its last listener left. */
const LINGER_MS = 1_000;

/** The channels of one client and their listeners. */
export class Subscriber {
  readonly #source: Redis;
  readonly #refs: SocketRefs;
  #connection: Redis | undefined;
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  readonly #lingering = new Map<string, ReturnType<typeof setTimeout>>();
  #closed = false;

  constructor(source: Redis, refs: SocketRefs) {
    this.#source = source;
    this.#refs = refs;
  }

  async subscribe(
    channel: string,
    onMessage: (message: string) => void,
  ): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error('closed');
    const connection = this.#open();
    // Still subscribed from a recent wait on the same channel: no round trip.
    clearTimeout(this.#lingering.get(channel));
    this.#lingering.delete(channel);
    let listeners = this.#listeners.get(channel);
    const subscribed = listeners !== undefined;
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    // A fresh function per subscription, so that one listener subscribed twice is removed once.
    const listener = (message: string) => onMessage(message);
    listeners.add(listener);
    if (!subscribed) await connection.subscribe(channel);
    return () => {
      const current = this.#listeners.get(channel);
      if (!current?.delete(listener) || current.size > 0 || this.#closed) {
        return Promise.resolve();
      }
      // A contended lock is waited for again soon: stay subscribed a little while.
      const timer = setTimeout(() => {
        this.#lingering.delete(channel);
        if (this.#listeners.get(channel)?.size !== 0) return;
        this.#listeners.delete(channel);
        if (!this.#closed) connection.unsubscribe(channel).catch(() => undefined);
      }, LINGER_MS);
      timer.unref?.();
      this.#lingering.set(channel, timer);
      return Promise.resolve();
    };
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#lingering.values()) clearTimeout(timer);
    this.#lingering.clear();
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
    connection.on('message', (channel: string, message: string) => {
      for (const listener of this.#listeners.get(channel) ?? []) listener(message);
    });
    this.#refs.own(connection);
    this.#connection = connection;
    return connection;
  }
}
