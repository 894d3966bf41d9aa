/**
 * Session mode's connections: each holding is tied to one connection taken from the pool, which
 * holds an advisory lock (the holding's "beacon", `pg_advisory_lock(SESSION_LOCK_SPACE, beacon)`)
 * for as long as the holding lasts. PostgreSQL releases the beacon the moment that connection ends
 * (the process died, the server terminated it, the network dropped it and the server noticed), and
 * the call function treats a holder whose beacon is gone as gone: the key is free at once for the
 * next holder. The holder's side learns of the loss from the connection's `error`/`end` event and
 * aborts the holding's `lost` signal at once.
 */
import type pg from 'pg';
import { BackendUnavailableError } from '../../core/errors.js';

/** One holding's connection and its loss signal. */
interface Held {
  readonly client: pg.PoolClient;
  readonly lost: AbortController;
  readonly stop: () => void;
}

export class SessionConnections {
  readonly #pool: pg.Pool;
  /** Holdings by token (tokens are unique per request). */
  readonly #held = new Map<string, Held>();

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /**
   * A connection of its own for one attempt. Until {@link hold} or {@link giveBack}, a failure of
   * the connection is only swallowed (the attempt's query reports it).
   */
  async take(): Promise<pg.PoolClient> {
    const client = await this.#pool.connect();
    client.on('error', ignore);
    return client;
  }

  /**
   * Tie the holding of `token` to `client` (which now holds its beacon): the returned signal is
   * aborted, with a retryable error as its reason, as soon as the connection ends.
   */
  hold(token: string, client: pg.PoolClient): AbortSignal {
    const lost = new AbortController();
    const onGone = (error?: unknown) => {
      if (lost.signal.aborted) return;
      lost.abort(
        new BackendUnavailableError('the session connection holding the lock ended', {
          cause: error ?? new Error('connection ended'),
        }),
      );
    };
    const onEnd = () => onGone();
    client.on('error', onGone);
    client.on('end', onEnd);
    const stop = () => {
      client.off('error', onGone);
      client.off('end', onEnd);
    };
    this.#held.get(token)?.stop();
    this.#held.set(token, { client, lost, stop });
    return lost.signal;
  }

  /** The connection holding `token`'s beacon, while it is alive. */
  connectionOf(token: string): pg.PoolClient | undefined {
    const held = this.#held.get(token);
    return held && !held.lost.signal.aborted ? held.client : undefined;
  }

  /**
   * Forget the holding of `token`: its connection goes back to the pool if `clean` (its beacon was
   * given back), else it is closed (which frees any beacon it still holds).
   */
  drop(token: string, clean: boolean): void {
    const held = this.#held.get(token);
    if (!held) return;
    this.#held.delete(token);
    held.stop();
    this.giveBack(held.client, clean && !held.lost.signal.aborted);
  }

  /** Return a connection that holds no beacon to the pool, or close it (`reusable` false). */
  giveBack(client: pg.PoolClient, reusable = true): void {
    client.off('error', ignore);
    // A listener must stay until the client is really gone: a late error would crash the process.
    if (!reusable) client.on('error', ignore);
    client.release(reusable ? undefined : new Error('distlock: session connection closed'));
  }

  /** Close every holding's connection (their beacons go with them). */
  closeAll(): void {
    for (const token of [...this.#held.keys()]) this.drop(token, false);
  }
}

function ignore(): void {
  // A connection's failure is reported by the operation using it, or through a holding's signal.
}
