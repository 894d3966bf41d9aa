/**
 * One Redlock node: its client-layer connection, and when its per-node timeout may start. A
 * node's first call on a new client waits for the connection to be set up (TCP, handshake), which
 * on a loaded machine can take longer than a whole per-node timeout: the timeout bounds how long
 * a *connected* node may take to answer (a stalled or partitioned node), and ioredis's own
 * `connectTimeout` bounds the connect.
 */
import type { RedisConnection } from '../redis/connection.js';
import type { IoredisConnection } from '../redis/ioredis/connection.js';

/** A node as a round sees it. */
export interface NodeLink {
  readonly connection: RedisConnection;
  /** Settles once a connect in progress has ended (either way); undefined if none is. */
  connecting(): Promise<void> | undefined;
}

/** States of an ioredis client while its first (or a new) connection is being set up. */
const CONNECTING = new Set(['wait', 'connecting', 'connect']);

/** A {@link NodeLink} over the ioredis client layer. */
export function ioredisNode(connection: IoredisConnection): NodeLink {
  const client = connection.client;
  let pending: Promise<void> | undefined;
  return {
    connection,
    connecting() {
      if (!CONNECTING.has(client.status)) return undefined;
      pending ??= new Promise<void>((resolve) => {
        const done = () => {
          client.off('ready', done);
          client.off('error', done);
          client.off('close', done);
          pending = undefined;
          resolve();
        };
        client.on('ready', done);
        client.on('error', done);
        client.on('close', done);
      });
      return pending;
    },
  };
}
