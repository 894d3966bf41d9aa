/**
 * The backend's one `LISTEN` connection: it receives every grant notification of the lease table
 * (`<fence> <grant ms> <token>`, sent by the call function when it hands the key to a waiter) and
 * routes each to the waiting request by its token. One connection per backend, however many
 * requests wait; none at all until the first request has to wait.
 *
 * A notification sent while the connection is down is lost: the connection's state is reported to
 * every waiter (`onDown`), and waiters then poll (jittered) until it is back, and once more right
 * after it is back. The connection is reconnected while anyone waits, with backoff. Its socket does
 * not keep the process alive while nobody waits.
 */
import type { Socket } from 'node:net';
import type pg from 'pg';
import { quoteIdent } from './schema.js';

/** A grant as the notification carries it. */
export interface GrantNotice {
  readonly fence: string;
  /** The database's clock at the grant (epoch ms). */
  readonly grantMs: number;
  /** Local `Date.now()` when the notification arrived. */
  readonly receivedAt: number;
}

/** What a waiting request hears from the listener. */
export interface ListenerSubscriber {
  /** Its grant arrived. */
  onGrant(notice: GrantNotice): void;
  /** The connection went down (notifications may be lost) or came back up. */
  onConnection(up: boolean): void;
}

/** First and last delay between reconnection attempts. */
const RECONNECT_FIRST_MS = 50;
const RECONNECT_MAX_MS = 2_000;

export class GrantListener {
  readonly #connect: () => pg.Client;
  readonly #channel: string;
  readonly #subscribers = new Map<string, ListenerSubscriber>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #up = false;
  #closed = false;
  #reconnectDelayMs = RECONNECT_FIRST_MS;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(connect: () => pg.Client, channel: string) {
    this.#connect = connect;
    this.#channel = channel;
  }

  /** True while the connection is listening: a grant sent now will be heard. */
  get up(): boolean {
    return this.#up;
  }

  /** The backend process id of the `LISTEN` connection, while connected (for tests and operators). */
  get processId(): number | undefined {
    const pid = (this.#client as { processID?: number | null } | undefined)?.processID;
    return this.#up && typeof pid === 'number' ? pid : undefined;
  }

  /**
   * Route the grant of `token` to `subscriber` until the returned function is called. Does not
   * connect: call {@link ensure} once the request waits (`subscriber.onConnection(true)` tells when
   * it listens), so that a lock that is never contended costs no `LISTEN` connection.
   */
  subscribe(token: string, subscriber: ListenerSubscriber): () => void {
    this.#subscribers.set(token, subscriber);
    this.#refSocket(true);
    return () => {
      if (this.#subscribers.get(token) === subscriber) this.#subscribers.delete(token);
      if (this.#subscribers.size === 0) this.#refSocket(false);
    };
  }

  /** Start listening if not yet (or no longer) listening; failures are retried with backoff. */
  ensure(): void {
    if (!this.#up) this.#start();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = undefined;
    this.#up = false;
    if (client) await client.end().catch(() => undefined);
  }

  #start(): void {
    if (this.#connecting || this.#closed) return;
    this.#connecting = this.#open().finally(() => (this.#connecting = undefined));
    this.#connecting.catch(() => this.#scheduleReconnect());
  }

  async #open(): Promise<void> {
    const client = this.#connect();
    let settled = false;
    const onGone = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      this.#setUp(false);
      if (settled) this.#scheduleReconnect();
    };
    client.on('error', onGone);
    client.on('end', onGone);
    client.on('notification', (message) => this.#dispatch(message.payload));
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.#channel)}`);
      settled = true;
      if (this.#client !== client || this.#closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.#reconnectDelayMs = RECONNECT_FIRST_MS;
      this.#refSocket(this.#subscribers.size > 0);
      this.#setUp(true);
    } catch (error) {
      settled = true;
      if (this.#client === client) this.#client = undefined;
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#subscribers.size === 0 || this.#reconnectTimer) return;
    const delay = this.#reconnectDelayMs * (0.5 + Math.random() / 2);
    this.#reconnectDelayMs = Math.min(this.#reconnectDelayMs * 2, RECONNECT_MAX_MS);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.#up) this.#start();
    }, delay);
    this.#reconnectTimer.unref();
  }

  #setUp(up: boolean): void {
    if (this.#up === up) return;
    this.#up = up;
    for (const subscriber of [...this.#subscribers.values()]) subscriber.onConnection(up);
  }

  #dispatch(payload: string | undefined): void {
    if (payload === undefined) return;
    // `<fence> <grant ms> <token>`: the token runs to the end (it may contain spaces).
    const first = payload.indexOf(' ');
    const second = payload.indexOf(' ', first + 1);
    if (first < 0 || second < 0) return;
    const subscriber = this.#subscribers.get(payload.slice(second + 1));
    if (!subscriber) return;
    subscriber.onGrant({
      fence: payload.slice(0, first),
      grantMs: Number(payload.slice(first + 1, second)),
      receivedAt: Date.now(),
    });
  }

  /** Let the process exit while nobody waits (the connection itself stays open). */
  #refSocket(ref: boolean): void {
    const stream = (this.#client as { connection?: { stream?: Socket } } | undefined)?.connection
      ?.stream;
    if (!stream) return;
    if (ref) stream.ref();
    else stream.unref();
  }
}
