/**
 * A fault-suite worker process. It loops: acquire the lock → read the record → work → append one
 * unique element and write the record back → release, and reports every step as a JSON line on
 * stdout (see `history.ts`). In fenced mode the reads and writes carry the lease's fence through a
 * guard; unfenced, they carry none.
 *
 * It never checks its lease before writing, on purpose: a check narrows the window in which a
 * paused holder writes after its lease ended but cannot close it (the pause can come right after
 * the check), so the suite measures what the resource sees with the window wide open. The lease's
 * loss signal is still recorded, for the history checker.
 *
 * Configured by DISTLOCK_FAULT_WORKER (JSON, {@link WorkerConfig}); stops after the current
 * iteration when its stdin closes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { createLocks } from '../../src/core/locks.js';
import type { LockBackend } from '../../src/core/backend.js';
import { LockError, LockLostError } from '../../src/core/errors.js';
import { StaleFenceError } from '../../src/fence/index.js';
import { monotonicMs, type AccessOutcome, type WorkerEvent } from './history.js';
import { NO_FENCE, openRecord } from './record.js';
import { WORKER_CONFIG_ENV, type WorkerConfig } from './worker-config.js';

type Emitted = WorkerEvent extends infer E
  ? E extends WorkerEvent
    ? Omit<E, 'slot' | 'gen'>
    : never
  : never;

const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? 'null') as WorkerConfig | null;
if (config === null) throw new Error(`${WORKER_CONFIG_ENV} is not set`);

/** One line per event, written synchronously (stdout is a pipe: synchronous on Linux). */
function emit(event: Emitted): void {
  process.stdout.write(`${JSON.stringify({ slot: config!.slot, gen: config!.gen, ...event })}\n`);
}

function codeOf(error: unknown): string {
  if (error instanceof LockError) return error.code;
  return (error as { code?: string })?.code ?? (error as Error)?.name ?? 'unknown';
}

function outcomeOf(error: unknown): AccessOutcome {
  return error instanceof StaleFenceError ? 'stale' : 'error';
}

let stopping = false;
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => (stopping = true));
process.stdin.on('error', () => (stopping = true));

async function main(cfg: WorkerConfig): Promise<void> {
  Object.assign(process.env, cfg.backendEnv);
  const module = (await import(pathToFileURL(cfg.backendModule).href)) as {
    createBackend: () => LockBackend | Promise<LockBackend>;
  };
  const backend = await module.createBackend();
  const locks = createLocks({ backend, ttlMs: cfg.ttlMs, waitMs: 10_000 });
  const record = openRecord(cfg.record);
  emit({ type: 'ready', pid: process.pid, t: monotonicMs() });

  for (let seq = 0; !stopping; seq += 1) {
    let t0 = monotonicMs();
    let lease;
    try {
      lease = await locks.acquire(cfg.key);
    } catch (error) {
      emit({ type: 'acquire-failed', t0, t1: monotonicMs(), code: codeOf(error) });
      await sleep(20);
      continue;
    }
    const t1 = monotonicMs();
    const fence = String(lease.fence);
    emit({ type: 'acquired', t0, t1, fence, deadline: t1 + (lease.expiresAt - Date.now()) });
    const signal = lease.signal;
    const onLost = () => {
      const reason: unknown = signal.reason;
      emit({
        type: 'lost',
        fence,
        reason: reason instanceof LockLostError ? reason.reason : String(reason),
        t: monotonicMs(),
      });
    };
    // A grant that reached us after its deadline (a stalled link) comes already lost.
    if (signal.aborted) onLost();
    else signal.addEventListener('abort', onLost);
    const accessFence = cfg.fenced ? lease.fence : NO_FENCE;
    await readModifyWrite(cfg, record, accessFence, fence, seq);
    t0 = monotonicMs();
    const outcome = await lease.release().catch((error: unknown) => `error ${codeOf(error)}`);
    emit({ type: 'released', t0, t1: monotonicMs(), fence, outcome });
  }
  await record.close();
  await locks.close();
}

async function readModifyWrite(
  cfg: WorkerConfig,
  record: ReturnType<typeof openRecord>,
  accessFence: bigint,
  fence: string,
  seq: number,
): Promise<void> {
  let t0 = monotonicMs();
  let elements: string[];
  try {
    elements = await record.read(accessFence);
  } catch (error) {
    emit({
      type: 'read',
      t0,
      t1: monotonicMs(),
      fence,
      outcome: outcomeOf(error),
      code: codeOf(error),
    });
    return;
  }
  emit({ type: 'read', t0, t1: monotonicMs(), fence, outcome: 'ok', size: elements.length });
  const [least, most] = cfg.workMs;
  await sleep(least + Math.random() * (most - least));
  const element = `${cfg.slot}.${cfg.gen}.${seq}:${fence}`;
  t0 = monotonicMs();
  emit({ type: 'write-start', fence, t: t0 });
  try {
    await record.write([...elements, element], accessFence);
    emit({ type: 'write', t0, t1: monotonicMs(), fence, element, outcome: 'ok' });
  } catch (error) {
    const outcome = outcomeOf(error);
    emit({ type: 'write', t0, t1: monotonicMs(), fence, element, outcome, code: codeOf(error) });
  }
}

main(config).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
