/**
 * Plain-text tables for benchmark output.
 */

/** One table row: column name -> cell. Numbers are formatted with {@link formatNumber}. */
export type TableRow = Record<string, string | number | boolean | null | undefined>;

/**
 * Formats a number for a table: integers with thousands separators, others with 3 significant decimals
 * (at most), NaN / undefined as `-`.
 */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function cell(value: TableRow[string]): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'number') return formatNumber(value);
  return String(value);
}

/**
 * Renders rows as an aligned text table (columns: the union of the rows' keys, in first-seen order, unless
 * `columns` is given). Text columns are left-aligned, numeric ones right-aligned.
 */
export function formatTable(rows: readonly TableRow[], columns?: readonly string[]): string {
  const cols = columns ?? [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cells = rows.map((row) => cols.map((c) => cell(row[c])));
  const numeric = cols.map((c) => rows.every((row) => row[c] === undefined || typeof row[c] !== 'string'));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** Prints {@link formatTable} to stdout, with an optional title line above it. */
export function printTable(rows: readonly TableRow[], options: { title?: string; columns?: readonly string[] } = {}) {
  if (options.title) console.log(`\n${options.title}`);
  console.log(formatTable(rows, options.columns));
}
