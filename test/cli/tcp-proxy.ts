/**
 * A loopback TCP proxy that can simulate a network partition: while frozen, bytes in both
 * directions are dropped (and new connections go nowhere), as if the store stopped answering.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** Port the proxy listens on, on 127.0.0.1. */
  readonly port: number;
  /** Drop all traffic from now on. */
  freeze(): void;
  /** Close every connection (clients reconnect) and forward traffic again. */
  heal(): void;
  close(): Promise<void>;
}

/** Start a proxy to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };
  const server: Server = createServer((client) => {
    track(client);
    if (frozen) return; // accepted, never answered
    const upstream = connect(targetPort, '127.0.0.1');
    track(upstream);
    client.on('data', (chunk) => {
      if (!frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!frozen) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    freeze: () => {
      frozen = true;
    },
    heal: () => {
      for (const socket of sockets) socket.destroy();
      frozen = false;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
