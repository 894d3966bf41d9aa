/**
 * Injects one fault of a kind (see `faults.ts`) and records it in the history: processes paused
 * with SIGSTOP and resumed with SIGCONT, killed with SIGKILL and restarted, links of the fault
 * proxies broken and healed. Faults that must outlast a lease last `2 × TTL + 300 ms`, so that the
 * store has let another client in before they end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { killAndWait } from '../harness/process.js';
import type { FaultProxy } from './fault-proxy.js';
import type { FaultKind } from './faults.js';
import { monotonicMs, type FaultEvent, type HistoryEvent } from './history.js';
import type { Links } from './links.js';
import type { Deployment, ServerHandle } from './setups.js';
import type { Phase, Slot, Workers } from './workers.js';

/** A holder pause that keeps missing the read → write window is tried this many times. */
const PAUSE_ATTEMPTS = 5;

export interface InjectorContext {
  readonly workers: Workers;
  readonly deployment: Deployment;
  readonly links: Links;
  readonly ttlMs: number;
  /** After a holder kill, how long to wait for the lock to be granted again before going on. */
  readonly recoveryBoundMs: number;
  readonly history: HistoryEvent[];
}

export class Injector {
  readonly #c: InjectorContext;

  constructor(context: InjectorContext) {
    this.#c = context;
  }

  /** How long a fault that must outlast a lease lasts. */
  get outlastMs(): number {
    return 2 * this.#c.ttlMs + 300;
  }

  /** Inject one fault of `kind`; resolves once it has healed (false if no target was found). */
  async inject(kind: FaultKind): Promise<boolean> {
    switch (kind) {
      case 'holder-pause':
        return this.#pauseHolder();
      case 'holder-kill':
        return this.#killHolder();
      case 'server-pause':
        return this.#pauseServers(kind, [await this.#follower()]);
      case 'leader-pause':
        return this.#pauseServers(kind, [await this.#leader()]);
      case 'quorum-pause':
        return this.#pauseServers(kind, await this.#majority());
      case 'server-restart':
        return this.#restartServer(kind, await this.#follower());
      case 'leader-restart':
        return this.#restartServer(kind, await this.#leader());
      case 'net-latency':
        return this.#breakLinks(kind, 'all links', this.#c.links.all(), (proxy) => {
          proxy.latencyMs = Math.round(this.#c.ttlMs / 5);
        });
      case 'net-blackhole':
        return this.#breakHolderLinks(kind, (proxy) => proxy.blackhole());
      case 'net-stall-up':
        return this.#breakHolderLinks(kind, (proxy) => proxy.stall('up'));
      case 'net-stall-down':
        return this.#breakLinks(kind, 'all links', this.#c.links.all(), (p) => p.stall('down'));
      case 'net-drop': {
        const t0 = monotonicMs();
        for (const proxy of this.#c.links.all()) proxy.drop();
        this.#record({ kind, target: 'all links', t0, t1: t0 });
        return true;
      }
    }
  }

  /**
   * SIGSTOP a holder that has read the record and not yet written it, for longer than its lease;
   * SIGCONT. It "landed" if the holder had not started its write before it stopped: only then
   * can its write be stale. One that missed is recorded (`landed: false`) and tried again.
   */
  async #pauseHolder(): Promise<boolean> {
    // Someone must be there to take over while it is paused: a respawned worker may still start.
    await this.#allStarted();
    for (let attempt = 1; attempt <= PAUSE_ATTEMPTS; attempt += 1) {
      const slot = await this.#holder(['read']);
      if (!slot) return false;
      const { gen, fence } = slot;
      const t0 = monotonicMs();
      slot.child.kill('SIGSTOP');
      slot.paused = true;
      await sleep(this.outlastMs);
      slot.child.kill('SIGCONT');
      slot.paused = false;
      const t1 = monotonicMs();
      const writeStart = await this.#writeStart(slot.slot, gen, fence!);
      // A stopped process emits nothing: a write announced after mid-pause came after SIGCONT.
      const landed = writeStart === undefined || writeStart > (t0 + t1) / 2;
      this.#record({
        kind: 'holder-pause',
        target: `slot ${slot.slot}`,
        t0,
        t1,
        slot: slot.slot,
        gen,
        fence,
        landed,
      });
      if (landed) return true;
    }
    return false;
  }

  /** When worker `slot`/`gen` announced its write under `fence` (waits a little for the line). */
  async #writeStart(slot: number, gen: number, fence: string): Promise<number | undefined> {
    const deadline = Date.now() + 2_000;
    for (;;) {
      const event = this.#c.history.find(
        (e) => e.type === 'write-start' && e.slot === slot && e.gen === gen && e.fence === fence,
      );
      if (event?.type === 'write-start') return event.t;
      if (Date.now() > deadline) return undefined;
      await sleep(10);
    }
  }

  /** SIGKILL a holder; a new worker takes its slot. */
  async #killHolder(): Promise<boolean> {
    // Someone must be waiting to take over: a worker killed before may still be starting.
    await this.#allStarted();
    const slot = await this.#holder(['holding', 'read', 'writing']);
    if (!slot) return false;
    const { gen, fence } = slot;
    const t0 = monotonicMs();
    await killAndWait(slot.child);
    this.#record({
      kind: 'holder-kill',
      target: `slot ${slot.slot}`,
      t0,
      t1: t0,
      slot: slot.slot,
      gen,
      fence,
    });
    await this.#c.workers.respawn(slot);
    // No other fault until the lock is granted again: liveness is measured on this crash alone.
    const deadline = Date.now() + this.#c.recoveryBoundMs + 1_000;
    while (Date.now() < deadline && !this.#grantedSince(t0)) await sleep(10);
    return true;
  }

  #grantedSince(t: number): boolean {
    return this.#c.history.some((e) => e.type === 'acquired' && e.t1 > t);
  }

  async #pauseServers(kind: FaultKind, servers: ServerHandle[]): Promise<boolean> {
    const t0 = monotonicMs();
    for (const server of servers) server.process().kill('SIGSTOP');
    try {
      await sleep(this.outlastMs);
    } finally {
      for (const server of servers) server.process().kill('SIGCONT');
    }
    this.#record({ kind, target: servers.map((s) => s.name).join(', '), t0, t1: monotonicMs() });
    return true;
  }

  /** SIGKILL a server, leave it down for half a TTL, restart it on its data. */
  async #restartServer(kind: FaultKind, server: ServerHandle): Promise<boolean> {
    const t0 = monotonicMs();
    await killAndWait(server.process());
    await sleep(this.#c.ttlMs / 2);
    await server.restart();
    this.#record({ kind, target: server.name, t0, t1: monotonicMs() });
    return true;
  }

  async #breakHolderLinks(kind: FaultKind, fault: (proxy: FaultProxy) => void): Promise<boolean> {
    const slot = await this.#holder(['holding', 'read', 'writing']);
    if (!slot) return false;
    return this.#breakLinks(kind, `slot ${slot.slot}`, this.#c.links.of(slot.slot), fault, slot);
  }

  async #breakLinks(
    kind: FaultKind,
    target: string,
    proxies: FaultProxy[],
    fault: (proxy: FaultProxy) => void,
    slot?: Slot,
  ): Promise<boolean> {
    const t0 = monotonicMs();
    for (const proxy of proxies) fault(proxy);
    try {
      await sleep(this.outlastMs);
    } finally {
      for (const proxy of proxies) proxy.heal();
    }
    const who = slot ? { slot: slot.slot, gen: slot.gen, fence: slot.fence } : {};
    this.#record({ kind, target, t0, t1: monotonicMs(), ...who });
    return true;
  }

  /** Wait (up to 30 s) until every worker has started. */
  async #allStarted(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && this.#c.workers.slots.some((s) => s.phase === 'starting')) {
      await sleep(10);
    }
  }

  /** A worker in one of `phases` (waits up to 15 s for one). */
  async #holder(phases: readonly Phase[]): Promise<Slot | undefined> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const slot = this.#c.workers.slots.find((s) => phases.includes(s.phase) && !s.paused);
      if (slot) return slot;
      await sleep(2);
    }
    return undefined;
  }

  async #leader(): Promise<ServerHandle> {
    const { deployment } = this.#c;
    if (!deployment.leader) throw new Error('this deployment has no leader');
    return deployment.leader();
  }

  /** A server that is not the leader (the only one, for a single server). */
  async #follower(): Promise<ServerHandle> {
    const { servers } = this.#c.deployment;
    if (servers.length === 0) throw new Error('this deployment has no server');
    const leader =
      servers.length > 1 && this.#c.deployment.leader ? await this.#leader() : undefined;
    return servers.find((server) => server !== leader)!;
  }

  /** A majority of the servers, the leader among them where there is one. */
  async #majority(): Promise<ServerHandle[]> {
    const { servers } = this.#c.deployment;
    const leader = this.#c.deployment.leader ? await this.#leader() : undefined;
    const ordered = leader ? [leader, ...servers.filter((s) => s !== leader)] : [...servers];
    return ordered.slice(0, Math.floor(servers.length / 2) + 1);
  }

  #record(fault: Omit<FaultEvent, 'type'>): void {
    this.#c.history.push({ type: 'fault', ...fault });
  }
}
