/**
 * A loopback TCP proxy that injects network faults between a client and a server, without root or
 * Docker: the fault suite puts one in front of every server endpoint for every worker, so that it
 * can partition one client or all of them.
 *
 * Faults model what a network does to a TCP stream (bytes are never dropped from the middle of a
 * stream; TCP would retransmit them):
 * - **latency**: every chunk, each way, is delivered `ms` later, in order;
 * - **black hole**: nothing is delivered either way and new connections are accepted but never
 *   connected (a partition); when it heals, the connections it held are reset, as TCP gives up on
 *   a peer that went silent;
 * - **one-way stall**: bytes one way (`up`: client → server, `down`: server → client) are held and
 *   delivered when it heals, the connection intact (an asymmetric partition that heals in time);
 * - **drop**: every open connection is reset at once (a NAT or load balancer forgetting them);
 *   new connections work.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A direction of a proxied connection. */
export type Direction = 'up' | 'down';

/** One direction of one connection: delivers chunks to `to` as the proxy's faults allow. */
class Pipe {
  readonly #queue: Array<{ at: number; chunk: Buffer }> = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly direction: Direction,
    private readonly to: () => Socket | undefined,
  ) {}

  push(chunk: Buffer): void {
    this.#queue.push({ at: Date.now() + this.proxy.latencyMs, chunk });
    this.pump();
  }

  /** Deliver what is due, unless held; re-arm for the next chunk. */
  pump(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const socket = this.to();
    if (!socket || this.proxy.holds(this.direction)) return;
    const now = Date.now();
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now) {
      socket.write(this.#queue.shift()!.chunk);
    }
    const next = this.#queue[0];
    if (next !== undefined) {
      this.#timer = setTimeout(() => this.pump(), next.at - now);
      this.#timer.unref();
    }
  }

  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#queue.length = 0;
  }
}

/** A proxied connection: the client's socket, the server's (once connected) and two pipes. */
interface Connection {
  readonly client: Socket;
  upstream: Socket | undefined;
  readonly up: Pipe;
  readonly down: Pipe;
  /** Opened, or held bytes, during a black hole: reset when it heals. */
  blackholed: boolean;
}

/** A proxy to `127.0.0.1:targetPort`; see the module doc for the faults. */
export class FaultProxy {
  /** Added one-way delay in ms, each direction. */
  latencyMs = 0;
  #blackhole = false;
  readonly #stalled = new Set<Direction>();
  readonly #connections = new Set<Connection>();
  readonly #server: Server;
  readonly #targetPort: number;
  #port = 0;

  private constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  /** Start a proxy on a free loopback port. */
  static async start(targetPort: number): Promise<FaultProxy> {
    const proxy = new FaultProxy(targetPort);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = proxy.#server.address();
    proxy.#port = typeof address === 'object' && address !== null ? address.port : 0;
    return proxy;
  }

  /** The port clients connect to. */
  get port(): number {
    return this.#port;
  }

  /** Whether bytes going `direction` are held now. */
  holds(direction: Direction): boolean {
    return this.#blackhole || this.#stalled.has(direction);
  }

  /** Start a black hole (see the module doc). */
  blackhole(): void {
    this.#blackhole = true;
    for (const connection of this.#connections) connection.blackholed = true;
  }

  /** Hold bytes going `direction` until {@link FaultProxy.heal}. */
  stall(direction: Direction): void {
    this.#stalled.add(direction);
  }

  /** Reset every open connection. */
  drop(): void {
    for (const connection of [...this.#connections]) this.#close(connection);
  }

  /** End every fault: no latency, held bytes delivered, black-holed connections reset. */
  heal(): void {
    this.latencyMs = 0;
    this.#stalled.clear();
    this.#blackhole = false;
    for (const connection of [...this.#connections]) {
      if (connection.blackholed) this.#close(connection);
      else {
        if (!connection.upstream) this.#connectUpstream(connection);
        connection.up.pump();
        connection.down.pump();
      }
    }
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const connection: Connection = {
      client,
      upstream: undefined,
      up: new Pipe(this, 'up', () => connection.upstream),
      down: new Pipe(this, 'down', () => client),
      blackholed: this.#blackhole,
    };
    this.#connections.add(connection);
    client.setNoDelay(true);
    client.on('error', () => undefined);
    client.on('close', () => this.#close(connection));
    client.on('data', (chunk) => connection.up.push(chunk));
    // In a black hole the connection is accepted but never reaches the server.
    if (!this.#blackhole) this.#connectUpstream(connection);
  }

  #connectUpstream(connection: Connection): void {
    const upstream = connect(this.#targetPort, '127.0.0.1');
    connection.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    upstream.on('close', () => this.#close(connection));
    upstream.on('data', (chunk) => connection.down.push(chunk));
    upstream.on('connect', () => connection.up.pump());
  }

  #close(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    connection.up.clear();
    connection.down.clear();
    connection.client.destroy();
    connection.upstream?.destroy();
  }
}
