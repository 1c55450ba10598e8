// What orq's rolling rate limit sees: the most calls inside any window (used by the budget tests and the fleet bench).

/** The most timestamps inside any window of `windowMs` (a call at t counts in [t, t + windowMs)). */
export function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let start = 0, end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}
