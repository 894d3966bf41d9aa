/** What the suite tells a worker process (`worker.ts`), through one environment variable. */
import type { RecordConfig } from './record.js';

export const WORKER_CONFIG_ENV = 'DISTLOCK_FAULT_WORKER';

/** What the suite tells a worker. */
export interface WorkerConfig {
  readonly slot: number;
  /** How many times this slot's worker was started before (after a kill). */
  readonly gen: number;
  /** A module exporting `createBackend()`, and the environment it reads. */
  readonly backendModule: string;
  readonly backendEnv: Readonly<Record<string, string>>;
  readonly key: string;
  readonly ttlMs: number;
  readonly fenced: boolean;
  readonly record: RecordConfig;
  /** Work between read and write: a random duration in this range, ms. */
  readonly workMs: readonly [number, number];
}
