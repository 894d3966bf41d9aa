/**
 * Tables and targets of the lock-kind benchmarks (B4–B6, issue 14 on Redis):
 * - B4: 8 readers on one key reach at least 4x one reader's throughput;
 * - B5: in a 90/10 read/write load, no writer waits for readers that asked after it (it waits at
 *   most for the reader batch ahead of it), where Redisson-like semantics let readers pass;
 * - B6: the semaphore (limit 3, 8 clients) reaches the best tuned peer's throughput with at most a
 *   fifth of its p99 wait, and Jain ≥ 0.99.
 */
import type { TargetCheck } from './report.js';
import { LATE_MARGIN_MS, type KindsResult } from './scenarios/kinds.js';
import { decimal, integer, percent, ratio, type Table } from './table.js';

/** The kinds' results of one run (each scenario when it ran). */
export interface KindsResults {
  readonly b4?: readonly KindsResult[];
  readonly b5?: readonly KindsResult[];
  readonly b6?: readonly KindsResult[];
}

const ms = (value: number | undefined, digits = 1) => decimal(value ?? Number.NaN, digits);

function checkCell(row: KindsResult): string {
  return row.correct
    ? 'OK'
    : `FAIL (${row.violations} broken rules, counter ${row.counter} ≠ ${row.writes} writes)`;
}

function errorNotes(rows: readonly KindsResult[]): string[] {
  return rows
    .filter((row) => row.errors > 0)
    .map(
      (row) => `${row.name} ${row.label}: ${row.errors} failed calls (first: ${row.firstError})`,
    );
}

/** B4 rows by contender: one reader and eight. */
function readerPairs(rows: readonly KindsResult[]) {
  const names = [...new Set(rows.map((row) => row.name))];
  return names.map((name) => {
    const one = rows.find((row) => row.name === name && row.clients === 1);
    const many = rows.find((row) => row.name === name && row.clients > 1);
    return { name, one, many, scaling: (many?.opsPerSec ?? NaN) / (one?.opsPerSec ?? NaN) };
  });
}

export function readersTable(rows: readonly KindsResult[]): Table {
  const pairs = readerPairs(rows);
  const many = rows.find((row) => row.clients > 1)?.clients ?? 8;
  const floor = pairs.find((pair) => rows.find((row) => row.name === pair.name)?.role === 'floor');
  return {
    title: `redis B4 — readers on 1 key: acquire → GET → release, 1 reader vs ${many} (interleaved rounds)`,
    headers: [
      'contender',
      '1 reader ops/s',
      `${many} readers ops/s`,
      `${many} vs 1`,
      'vs floor scaling',
      'most inside at once',
      `${many}-reader wait p50 ms`,
      'p99 ms',
      'check',
    ],
    rows: pairs.map((pair) => [
      pair.name,
      integer(pair.one?.opsPerSec ?? NaN),
      integer(pair.many?.opsPerSec ?? NaN),
      ratio(pair.scaling),
      ratio(pair.scaling / (floor?.scaling ?? NaN)),
      integer(pair.many?.mostInside.read ?? NaN),
      ms(pair.many?.waits.read?.p50, 2),
      ms(pair.many?.waits.read?.p99),
      pair.one && pair.many ? (pair.one.correct && pair.many.correct ? 'OK' : 'FAIL') : '–',
    ]),
    notes: [
      `floor = ${floor?.name ?? '?'}: what ${many} clients doing two round trips each reach on this machine.`,
      ...errorNotes(rows),
    ],
  };
}

export function mixedTable(rows: readonly KindsResult[]): Table {
  const first = rows[0];
  return {
    title:
      `redis B5 — ${first?.clients ?? '?'} clients on 1 key, 90 % reads (GET) / 10 % writes (GET+SET), ` +
      `${((first?.durationMs ?? 0) / 1000).toFixed(1)} s each`,
    headers: [
      'contender',
      'ops/s',
      'read wait p50 ms',
      'p99 ms',
      'write wait p50 ms',
      'p99 ms',
      'max ms',
      'read hold ms',
      'max write wait, read holds',
      'late readers, max per writer',
      'writers passed',
      'Jain',
      'check',
    ],
    rows: rows.map((row) => [
      row.name,
      integer(row.opsPerSec),
      ms(row.waits.read?.p50, 2),
      ms(row.waits.read?.p99),
      ms(row.waits.write?.p50, 2),
      ms(row.waits.write?.p99),
      ms(row.waits.write?.max),
      ms(row.readHoldMs, 2),
      decimal(row.maxWriterWaitInReadHolds, 1),
      integer(row.lateReaders.max),
      `${integer(row.lateReaders.writersPassed)} of ${integer(row.lateReaders.writers)}`,
      decimal(row.jain, 3),
      checkCell(row),
    ]),
    notes: [
      `late readers = readers that asked more than ${LATE_MARGIN_MS} ms after a writer (closer than about a round trip, requests are concurrent) and got in before it: a writer waiting longer than the reader batch ahead of it.`,
      'read hold = mean time a read holding lasted (grant → release), the length of one reader batch; max write wait in read holds = the longest writer wait in such batches.',
      ...errorNotes(rows),
    ],
  };
}

/** The best figure among the tuned peers' rows (or `NaN`). */
function bestTuned(
  rows: readonly KindsResult[],
  figure: (row: KindsResult) => number,
  higher: boolean,
) {
  const values = rows.filter((row) => row.role === 'peer' && row.tuned).map(figure);
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return Number.NaN;
  return higher ? Math.max(...finite) : Math.min(...finite);
}

export function semaphoreTable(rows: readonly KindsResult[], limit: number): Table {
  const bestOps = bestTuned(rows, (row) => row.opsPerSec, true);
  const bestP99 = bestTuned(rows, (row) => row.waits.permit?.p99 ?? NaN, false);
  const first = rows[0];
  return {
    title:
      `redis B6 — semaphore, limit ${limit}, ${first?.clients ?? '?'} clients on 1 key: ` +
      `acquire → GET → release, ${((first?.durationMs ?? 0) / 1000).toFixed(1)} s each`,
    headers: [
      'contender',
      'ops/s',
      'vs best tuned peer',
      'wait p50 ms',
      'p99 ms',
      'max ms',
      'p99 vs best',
      'per client min–max',
      'Jain',
      'same holder',
      'most inside',
      'gave up',
      'check',
    ],
    rows: rows.map((row) => [
      row.name,
      integer(row.opsPerSec),
      ratio(row.opsPerSec / bestOps),
      ms(row.waits.permit?.p50, 2),
      ms(row.waits.permit?.p99),
      ms(row.waits.permit?.max),
      ratio((row.waits.permit?.p99 ?? NaN) / bestP99),
      `${integer(Math.min(...row.perClient))}–${integer(Math.max(...row.perClient))}`,
      decimal(row.jain, 3),
      percent(row.sameHolder),
      integer(row.mostInside.permit),
      integer(row.giveUps),
      checkCell(row),
    ]),
    notes: [
      `best tuned peer: ${integer(bestOps)} ops/s, p99 wait ${ms(bestP99)} ms.`,
      ...errorNotes(rows),
    ],
  };
}

/** Issue 14's Redis targets, checked on distlock's rows. */
export function checkKindsTargets(results: KindsResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const add = (target: string, measured: string, met: boolean, contender = 'distlock') =>
    checks.push({ store: 'redis', contender, target, measured, met });
  if (results.b4) {
    const pairs = readerPairs(results.b4);
    const mine = pairs.find((pair) => pair.name === 'distlock');
    const floor = pairs.find(
      (pair) => results.b4!.find((row) => row.name === pair.name)?.role === 'floor',
    );
    if (mine) {
      add(
        'B4 8 readers ≥ 4x 1 reader',
        `${ratio(mine.scaling)} (floor ${floor?.name ?? '?'}: ${ratio(floor?.scaling ?? NaN)})`,
        mine.scaling >= 4,
      );
    }
  }
  for (const row of results.b5?.filter((r) => r.role === 'distlock') ?? []) {
    const peer = results.b5?.find((r) => r.role === 'peer');
    add(
      'B5 no writer waits for a reader that asked after it',
      `late readers max ${row.lateReaders.max}, max write wait ${decimal(row.maxWriterWaitInReadHolds, 1)} read holds` +
        (peer
          ? `; ${peer.name}: ${peer.lateReaders.max}, ${decimal(peer.maxWriterWaitInReadHolds, 1)}`
          : ''),
      row.lateReaders.max === 0,
    );
    add('B5 rules kept, counter = writes', checkCell(row), row.correct);
  }
  if (results.b6) {
    const bestOps = bestTuned(results.b6, (row) => row.opsPerSec, true);
    const bestP99 = bestTuned(results.b6, (row) => row.waits.permit?.p99 ?? NaN, false);
    const floor = results.b6.find((row) => row.role === 'floor');
    for (const row of results.b6.filter((r) => r.role === 'distlock')) {
      const p99 = row.waits.permit?.p99 ?? NaN;
      add(
        'B6 ops/s ≥ best tuned peer',
        `${integer(row.opsPerSec)} ops/s (limit ${integer(bestOps)}); floor ${integer(floor?.opsPerSec ?? NaN)}`,
        row.opsPerSec >= bestOps,
      );
      add(
        'B6 p99 wait ≤ best tuned peer / 5',
        `${ms(p99)} ms (limit ${ms(bestP99 / 5)} ms); floor ${ms(floor?.waits.permit?.p99)} ms`,
        p99 <= bestP99 / 5,
      );
      add('B6 Jain ≥ 0.99', decimal(row.jain, 3), row.jain >= 0.99);
      add('B6 rules kept (≤ limit inside)', checkCell(row), row.correct);
    }
  }
  return checks;
}
