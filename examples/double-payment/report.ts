/**
 * What people see: a progress bar per run while the workers work (plain lines when the output is
 * not a terminal), and the summary table at the end.
 */
import type CliProgress from 'cli-progress';
import { INVARIANTS } from './invariants.js';
import type { DemoResult } from './main.js';
import type { RunResult } from './run.js';

/**
 * cli-progress draws the bars. It is a devDependency, not a dependency of the published package
 * (whose library code never draws anything): where it is not installed, `distlock demo` shows the
 * plain lines instead.
 */
const cliProgress: typeof CliProgress | undefined = await import('cli-progress').then(
  (module) => module.default,
  () => undefined,
);

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
  if (stream.isTTY && cliProgress !== undefined) {
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

const FIRST_COLUMN_WIDTH = 46;
const COLUMN_WIDTH = 16;

function row(first: string, cells: readonly string[]): string {
  const rest = cells.map((cell) => cell.padEnd(COLUMN_WIDTH)).join('');
  return (first.padEnd(FIRST_COLUMN_WIDTH) + rest).trimEnd();
}

function verdict(broken: number): string {
  return broken === 0 ? '✓ holds' : `✗ ${broken} broken`;
}

function lockedOnly(run: RunResult, text: string): string {
  return run.locking ? text : '–';
}

/** The invariants and their precise rules, printed before the runs. */
export function formatInvariantRules(): string {
  const rules = Object.values(INVARIANTS).map(
    (invariant) => `  • ${invariant.title}: ${invariant.definition}`,
  );
  return ['After all payments, these must hold:', ...rules].join('\n');
}

/** The summary table and what it means, as text. */
export function formatSummary(result: DemoResult): string {
  const { runs } = result;
  const lines: string[] = [
    row(
      '',
      runs.map((run) => run.label),
    ),
  ];
  for (const [i, invariant] of (runs[0]?.invariants ?? []).entries()) {
    lines.push(
      row(
        invariant.title,
        runs.map((run) => verdict(run.invariants[i]?.broken ?? 0)),
      ),
    );
  }
  const fenced = runs.map((run) => lockedOnly(run, String(run.fenceRejections)));
  const lost = runs.map((run) => lockedOnly(run, String(run.leaseLosses)));
  const waited = runs.map((run) => lockedOnly(run, `${run.meanLockWaitMs.toFixed(1)} ms`));
  lines.push(row('stale accesses refused by fence (retried)', fenced));
  lines.push(row('leases lost before the write (retried)', lost));
  lines.push(row('mean wait for the account lock', waited));
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
    for (const invariant of broken) lines.push(`  ✗ ${invariant.title}: ${invariant.detail}`);
  }
  const storeLooksFine = runs.some(
    (run) =>
      run.brokenInvariants > 0 &&
      run.invariants.some(({ id, broken }) => id === 'order-within-price' && broken === 0),
  );
  if (storeLooksFine) {
    lines.push(
      'Note that the store alone looks consistent (no order overpaid): lost updates only show ' +
        'against the payments sent and the receipts issued.',
    );
  }
  const unsafe = runs.filter((run) => !run.expectSafe);
  if (unsafe.length > 0 && unsafe.every((run) => run.brokenInvariants === 0)) {
    lines.push(
      'Without the lock the race did not show this time; try more --payments or --workers.',
    );
  }
  const frozen = runs.find((run) => run.id === 'with-lock-frozen-worker');
  if (!result.ok) {
    lines.push('FAILED: an invariant broke although the lock was used.');
  } else {
    lines.push('With the lock: every invariant holds.');
    if (frozen && frozen.fenceRejections > 0) {
      lines.push(
        `A worker frozen past its lease was stopped by the fence: the store refused its stale ` +
          `write (${frozen.fenceRejections}×) and it retried the payment under a new lease.`,
      );
    }
  }
  return lines.join('\n');
}
