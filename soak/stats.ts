// Small statistics the soak reports: percentiles of latencies, medians of memory samples, growth between two figures.

/** The p-th percentile (0–100) by nearest rank; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Growth from `start` to `end` in percent (negative when it shrank). */
export function growthPct(start: number, end: number): number {
  return start > 0 ? ((end - start) / start) * 100 : Number.NaN;
}

/** Rounds for the JSON line: figures a reader compares, not noise digits. */
export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
