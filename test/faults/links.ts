/**
 * The network between the suite's workers and the lock servers: one {@link FaultProxy} per worker
 * slot and server endpoint, so that a fault can hit one client's links or everyone's.
 */
import { FaultProxy } from './fault-proxy.js';

export class Links {
  readonly #proxies = new Map<string, { slot: number; proxy: FaultProxy }>();

  /** The port worker `slot` connects to for the server on `targetPort` (a proxy, made once). */
  async port(slot: number, targetPort: number): Promise<number> {
    const id = `${slot}:${targetPort}`;
    let entry = this.#proxies.get(id);
    if (!entry) {
      entry = { slot, proxy: await FaultProxy.start(targetPort) };
      this.#proxies.set(id, entry);
    }
    return entry.proxy.port;
  }

  /** Every proxy of worker `slot`. */
  of(slot: number): FaultProxy[] {
    return [...this.#proxies.values()].filter((e) => e.slot === slot).map((e) => e.proxy);
  }

  /** Every proxy. */
  all(): FaultProxy[] {
    return [...this.#proxies.values()].map((e) => e.proxy);
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((proxy) => proxy.close()));
    this.#proxies.clear();
  }
}
