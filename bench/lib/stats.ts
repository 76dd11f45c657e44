/**
 * Summary statistics for benchmark samples.
 */

/** Percentile summary of a sample set (same unit as the input). All fields are NaN for an empty input. */
export interface Percentiles {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank percentiles (the smallest sample with at least p% of the samples at or below it), so every
 * reported figure is a value that was actually measured. Sorts a copy; the input is left untouched.
 * @example percentiles([3, 1, 2]) // { count: 3, min: 1, mean: 2, p50: 2, p90: 3, p99: 3, max: 3 }
 */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const n = values.length;
  if (n === 0)
    return {
      count: 0,
      min: Number.NaN,
      mean: Number.NaN,
      p50: Number.NaN,
      p90: Number.NaN,
      p99: Number.NaN,
      max: Number.NaN,
    };
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const rank = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] as number;
  return {
    count: n,
    min: sorted[0] as number,
    mean: sum / n,
    p50: rank(50),
    p90: rank(90),
    p99: rank(99),
    max: sorted[n - 1] as number,
  };
}

/** `a / b`, or NaN when `b` is 0 or either is not finite (so a ratio never reads as Infinity). */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}
