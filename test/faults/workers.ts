/**
 * The suite's worker processes: starting them (a killed worker's slot gets a new one), reading
 * their events into the history, and knowing where each one is in its loop, so that the injector
 * can aim at the holder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killAndWait } from '../harness/process.js';
import { compile } from './compile.js';
import type { HistoryEvent, WorkerEvent } from './history.js';
import { WORKER_CONFIG_ENV, type WorkerConfig } from './worker-config.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url));

/** Where a worker is in its loop. */
export type Phase = 'starting' | 'acquiring' | 'holding' | 'read' | 'writing' | 'releasing';

/** One slot's current worker. */
export interface Slot {
  readonly slot: number;
  gen: number;
  child: ChildProcess;
  phase: Phase;
  /** The fence it holds (while holding). */
  fence: string | undefined;
  paused: boolean;
  stderr: string;
}

/** The workers of one run. */
export class Workers {
  readonly slots: Slot[] = [];
  readonly #history: HistoryEvent[];
  readonly #config: (slot: number, gen: number) => Promise<WorkerConfig>;
  #acquisitions = 0;

  constructor(
    history: HistoryEvent[],
    config: (slot: number, gen: number) => Promise<WorkerConfig>,
  ) {
    this.#history = history;
    this.#config = config;
  }

  /** Successful acquisitions so far. */
  get acquisitions(): number {
    return this.#acquisitions;
  }

  /** Start `count` workers. */
  async start(count: number): Promise<void> {
    for (let slot = 0; slot < count; slot += 1) {
      this.slots.push(await this.#spawn(slot, 0));
    }
  }

  /** Replace the (killed) worker of `slot` with a new generation. */
  async respawn(slot: Slot): Promise<void> {
    await this.#spawn(slot.slot, slot.gen + 1, slot);
  }

  /** Stop every worker: resume the paused, close stdin (they finish their loop), then kill. */
  async stop(graceMs = 5_000): Promise<void> {
    for (const slot of this.slots) {
      if (slot.paused) slot.child.kill('SIGCONT');
      slot.child.stdin?.end();
    }
    await Promise.all(
      this.slots.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Kill every worker now (after a failure). */
  async kill(): Promise<void> {
    await Promise.all(this.slots.map((slot) => killAndWait(slot.child)));
  }

  /** Start a worker in `slot`; `reuse` is the slot's state, updated in place on a respawn. */
  async #spawn(slot: number, gen: number, reuse?: Slot): Promise<Slot> {
    const config = await this.#config(slot, gen);
    const script = await compile(WORKER_SCRIPT);
    const compiledConfig = { ...config, backendModule: await compile(config.backendModule) };
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, [WORKER_CONFIG_ENV]: JSON.stringify(compiledConfig) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const fresh = {
      gen,
      child,
      phase: 'starting' as Phase,
      fence: undefined,
      paused: false,
      stderr: '',
    };
    const state: Slot = reuse ? Object.assign(reuse, fresh) : { slot, ...fresh };
    child.stdin.on('error', () => undefined);
    child.stderr.on('data', (chunk: Buffer) => {
      state.stderr = (state.stderr + chunk.toString()).slice(-4_000);
    });
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffer.slice(0, newline)) as WorkerEvent;
        buffer = buffer.slice(newline + 1);
        this.#history.push(event);
        this.#track(state, event);
      }
    });
    return state;
  }

  #track(state: Slot, event: WorkerEvent): void {
    if (event.gen !== state.gen) return; // a killed generation's last lines
    switch (event.type) {
      case 'ready':
      case 'acquire-failed':
        state.phase = 'acquiring';
        break;
      case 'acquired':
        this.#acquisitions += 1;
        state.phase = 'holding';
        state.fence = event.fence;
        break;
      case 'read':
        state.phase = event.outcome === 'ok' ? 'read' : 'releasing';
        break;
      case 'write-start':
        state.phase = 'writing';
        break;
      case 'write':
        state.phase = 'releasing';
        break;
      case 'released':
        state.phase = 'acquiring';
        state.fence = undefined;
        break;
      case 'lost':
        break;
    }
  }
}
