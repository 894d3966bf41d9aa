/**
 * What people see: a progress bar per run while the workers work (plain lines when the output is
 * not a terminal), and the summary table at the end.
 */
import cliProgress from 'cli-progress';
import type { DemoResult } from './main.js';
import type { RunResult } from './run.js';

/** Progress of one run. */
export interface Progress {
  update(processed: number): void;
  stop(): void;
}

/**
 * A progress bar on a terminal; otherwise a line at every quarter, so logs stay readable.
 */
export function startProgress(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  label: string,
  total: number,
): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label.padEnd(26)} {bar} {value}/{total} payments  {duration_formatted}`,
        hideCursor: true,
        fps: 15,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { update: (processed) => bar.update(processed), stop: () => bar.stop() };
  }
  let quartersShown = 0;
  stream.write(`${label}: 0/${total} payments\n`);
  return {
    update(processed) {
      const quarters = Math.floor((4 * processed) / total);
      if (quarters > quartersShown) {
        quartersShown = quarters;
        stream.write(`${label}: ${processed}/${total} payments\n`);
      }
    },
    stop: () => undefined,
  };
}

const FIRST_COLUMN_WIDTH = 66;
const COLUMN_WIDTH = 16;

function row(first: string, cells: readonly string[]): string {
  return `${first.padEnd(FIRST_COLUMN_WIDTH)}${cells.map((cell) => cell.padEnd(COLUMN_WIDTH)).join('')}`.trimEnd();
}

function verdict(broken: number): string {
  return broken === 0 ? '✓ holds' : `✗ ${broken} broken`;
}

function lockedOnly(run: RunResult, text: string): string {
  return run.locking ? text : '–';
}

/** The summary table and what it means, as text. */
export function formatSummary(result: DemoResult): string {
  const { runs } = result;
  const lines: string[] = [];
  lines.push(
    row(
      '',
      runs.map((run) => run.label),
    ),
  );
  for (const [i, first] of (runs[0]?.invariants ?? []).entries()) {
    lines.push(
      row(
        first.description,
        runs.map((run) => verdict(run.invariants[i]?.broken ?? 0)),
      ),
    );
  }
  lines.push(
    row(
      'stale accesses refused by the fence (retried)',
      runs.map((run) => lockedOnly(run, String(run.fenceRejections))),
    ),
  );
  lines.push(
    row(
      'leases lost before the write (retried)',
      runs.map((run) => lockedOnly(run, String(run.leaseLosses))),
    ),
  );
  lines.push(
    row(
      'mean wait for the account lock',
      runs.map((run) => lockedOnly(run, `${run.meanLockWaitMs.toFixed(1)} ms`)),
    ),
  );
  lines.push(
    row(
      'payments per second',
      runs.map((run) => run.paymentsPerSecond.toFixed(0)),
    ),
  );
  lines.push(
    row(
      'wall time',
      runs.map((run) => `${(run.wallMs / 1_000).toFixed(2)} s`),
    ),
  );

  lines.push('');
  for (const run of runs) {
    const broken = run.invariants.filter((invariant) => invariant.broken > 0);
    if (broken.length === 0) continue;
    lines.push(`${run.label}: ${broken.length} of ${run.invariants.length} invariants broken`);
    for (const invariant of broken) lines.push(`  ✗ ${invariant.description}: ${invariant.detail}`);
  }
  const unlocked = runs.filter((run) => !run.expectSafe);
  if (unlocked.length > 0 && unlocked.every((run) => run.brokenInvariants === 0)) {
    lines.push(
      'Without the lock the race did not show this time; try more --payments or --workers.',
    );
  }
  const frozen = runs.find((run) => run.id === 'with-lock-frozen-worker');
  lines.push(
    result.ok
      ? 'With the lock: every invariant holds.' +
          (frozen && frozen.fenceRejections > 0
            ? ` Even when a worker froze past its lease, the store refused its stale write by its fence (${frozen.fenceRejections}×) and the payment was retried.`
            : '')
      : 'FAILED: an invariant broke while the lock was held. This is a bug in the lock or its backend.',
  );
  return lines.join('\n');
}
