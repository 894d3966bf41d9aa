/**
 * The fault suite's report: one row per backend (unfenced beside fenced), the faults injected by
 * kind, and the verdict of the "done when" for each backend.
 */
import type { CheckResult } from './checker.js';
import { FAULT_KINDS, type FaultKind } from './faults.js';

/** Both modes of one backend. */
export interface BackendOutcome {
  readonly backend: string;
  /** The kinds that apply to it (from its line in the backend table). */
  readonly kinds: readonly FaultKind[];
  readonly unfenced?: CheckResult & { readonly durationMs: number };
  readonly fenced?: CheckResult & { readonly durationMs: number };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** What a backend's runs failed of the "done when"; empty when everything held. */
export function shortfalls(outcome: BackendOutcome): string[] {
  const problems: string[] = [];
  const { unfenced, fenced } = outcome;
  if (unfenced && unfenced.lostUpdates === 0 && outcome.kinds.includes('holder-pause')) {
    problems.push('unfenced: no lost update under pauses (the suite did not show it can fail)');
  }
  if (fenced && fenced.violations > 0) problems.push(`fenced: ${fenced.violations} violations`);
  for (const [mode, result] of [
    ['unfenced', unfenced],
    ['fenced', fenced],
  ] as const) {
    if (!result) continue;
    const missing = outcome.kinds.filter((kind) => !result.faults[kind]);
    if (missing.length > 0) problems.push(`${mode}: never injected ${missing.join(', ')}`);
    if (result.exclusionViolations > 0) {
      problems.push(
        `${mode}: ${result.exclusionViolations} leases granted while another was valid`,
      );
    }
    if (result.livenessViolations > 0) {
      problems.push(`${mode}: ${result.livenessViolations} killed holders kept the lock too long`);
    }
  }
  return problems;
}

function violations(result: CheckResult | undefined): string {
  if (!result) return '–';
  const parts = [
    result.lostUpdates > 0 ? `${result.lostUpdates} lost updates` : '',
    result.fenceOrderViolations > 0 ? `${result.fenceOrderViolations} out of fence order` : '',
    result.exclusionViolations > 0 ? `${result.exclusionViolations} double grants` : '',
    result.livenessViolations > 0 ? `${result.livenessViolations} slow recoveries` : '',
  ].filter(Boolean);
  return parts.length === 0 ? '**0**' : `**${result.violations}** (${parts.join(', ')})`;
}

/** The summary table (markdown). */
export function summaryTable(outcomes: readonly BackendOutcome[]): string {
  const rows = outcomes.map((o) => {
    const { unfenced: u, fenced: f } = o;
    const faults = (u?.faults ? sum(u.faults) : 0) + (f?.faults ? sum(f.faults) : 0);
    const recovery = Math.max(u?.worstRecoveryMs ?? 0, f?.worstRecoveryMs ?? 0);
    const worstKind =
      (f?.worstRecoveryMs ?? 0) >= (u?.worstRecoveryMs ?? 0)
        ? f?.worstRecoveryKind
        : u?.worstRecoveryKind;
    const kill = Math.max(u?.worstKillRecoveryMs ?? 0, f?.worstKillRecoveryMs ?? 0);
    const late = (u?.lateLossSignals ?? 0) + (f?.lateLossSignals ?? 0);
    const lateBy = Math.max(u?.worstLossSignalLateMs ?? 0, f?.worstLossSignalLateMs ?? 0);
    return [
      o.backend,
      `${u?.operations ?? '–'} / ${f?.operations ?? '–'}`,
      `${faults} (${o.kinds.length} kinds)`,
      violations(u),
      violations(f),
      f ? `${f.staleRefused.reads} / ${f.staleRefused.writes}` : '–',
      late > 0 ? `${late} (≤ ${lateBy.toFixed(0)} ms)` : '0',
      kill > 0 ? seconds(kill) : '–',
      recovery > 0 ? `${seconds(recovery)} (${worstKind})` : '–',
    ];
  });
  return markdownTable(
    [
      'backend',
      'lock operations (unfenced / fenced)',
      'faults injected',
      'violations, unfenced',
      'violations, fenced',
      'stale accesses refused (reads / writes)',
      'loss signals late',
      'worst recovery after a holder kill',
      'worst recovery after any fault',
    ],
    rows,
  );
}

/** Faults injected, by kind (both modes together; `–`: does not apply). */
export function faultsTable(outcomes: readonly BackendOutcome[]): string {
  const kinds = FAULT_KINDS.filter((kind) => outcomes.some((o) => o.kinds.includes(kind)));
  const rows = outcomes.map((o) => [
    o.backend,
    ...kinds.map((kind) =>
      o.kinds.includes(kind)
        ? String((o.unfenced?.faults[kind] ?? 0) + (o.fenced?.faults[kind] ?? 0))
        : '–',
    ),
  ]);
  return markdownTable(['backend', ...kinds], rows);
}

/** The whole report: tables, then each backend's verdict. */
export function report(outcomes: readonly BackendOutcome[], command: string): string {
  const verdicts = outcomes.map((o) => {
    const problems = shortfalls(o);
    const time = seconds((o.unfenced?.durationMs ?? 0) + (o.fenced?.durationMs ?? 0));
    return problems.length === 0
      ? `- ${o.backend} (${time}): unfenced lost updates under pauses, fenced none; every kind injected.`
      : `- ${o.backend} (${time}): ${problems.join('; ')}`;
  });
  return [
    `\`${command}\``,
    '',
    summaryTable(outcomes),
    '',
    faultsTable(outcomes),
    '',
    ...verdicts,
    '',
  ].join('\n');
}

function sum(counts: Partial<Record<FaultKind, number>>): number {
  return Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
