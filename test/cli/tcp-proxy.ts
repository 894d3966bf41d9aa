/**
 * A loopback TCP proxy that can simulate a network partition: while frozen, nothing gets through
 * either way (and new connections go nowhere), as if the store stopped answering. A thin face of
 * the fault suite's {@link FaultProxy} (its black hole), which has the other network faults.
 */
import { FaultProxy } from '../faults/fault-proxy.js';

export interface TcpProxy {
  /** Port the proxy listens on, on 127.0.0.1. */
  readonly port: number;
  /** Let nothing through from now on. */
  freeze(): void;
  /** Close every connection (clients reconnect) and forward traffic again. */
  heal(): void;
  close(): Promise<void>;
}

/** Start a proxy to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const proxy = await FaultProxy.start(targetPort);
  return {
    port: proxy.port,
    freeze: () => proxy.blackhole(),
    heal: () => proxy.heal(),
    close: () => proxy.close(),
  };
}
