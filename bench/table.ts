/** Minimal tables for the terminal (aligned columns) and for BENCHMARKS.md (GitHub markdown). */

/** A table: header labels and rows of already-formatted cells; `right` marks numeric columns. */
export interface Table {
  readonly title: string;
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Per column: right-align (numbers). Defaults to right for every column but the first. */
  readonly right?: readonly boolean[];
  /** Lines printed under the table. */
  readonly notes?: readonly string[];
}

function isRight(table: Table, column: number): boolean {
  return table.right?.[column] ?? column > 0;
}

/** Render with padded columns for a terminal. */
export function renderText(table: Table): string {
  const widths = table.headers.map((header, column) =>
    Math.max(header.length, ...table.rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return isRight(table, column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [
    table.title,
    line(table.headers),
    rule,
    ...table.rows.map(line),
    ...(table.notes ?? []).map((note) => `  ${note}`),
  ].join('\n');
}

/** Render as a GitHub-flavoured markdown table. */
export function renderMarkdown(table: Table): string {
  const escape = (cell: string) => cell.replaceAll('|', '\\|');
  const align = table.headers.map((_, column) => (isRight(table, column) ? '---:' : ':---'));
  return [
    `### ${table.title}`,
    '',
    `| ${table.headers.map(escape).join(' | ')} |`,
    `| ${align.join(' | ')} |`,
    ...table.rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
    ...((table.notes ?? []).length ? ['', ...(table.notes ?? [])] : []),
  ].join('\n');
}

/** `12345.6` → `12,346`. */
export function integer(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';
}

/** Fixed decimals, or `–` for NaN. */
export function decimal(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** `1.234` → `1.23x`. */
export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '–';
}

/** `0.123` → `12.3 %`. */
export function percent(share: number): string {
  return Number.isFinite(share) ? `${(share * 100).toFixed(1)} %` : '–';
}
