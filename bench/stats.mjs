// Small statistics the bench reports with.

/** The p-th percentile by nearest rank: a value that occurred, never an interpolation. */
export function percentile(xs, p) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const median = (xs) => percentile(xs, 50);

/**
 * Milliseconds covered by at least one of the intervals ([start, end] pairs). The three subtasks of
 * a task wait on the model at the same time: the task waited once for those overlapping calls, so
 * their union, not their sum, is the time the task spent waiting outside flotilla.
 */
export function coveredMs(intervals) {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let from = Number.NEGATIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const [start, end] of sorted) {
    if (start > to) {
      if (to > from) total += to - from;
      from = start;
      to = end;
    } else to = Math.max(to, end);
  }
  if (to > from) total += to - from;
  return total;
}

export const ms = (x) => `${x.toFixed(1)} ms`;
