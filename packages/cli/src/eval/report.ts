import type { EvalRun, GoalResult } from './run.js';

/** Pads cells to the widest of their column; the first column left-aligned, numbers right. */
function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((cell, i) =>
        i === 0 || i === 1 || i === r.length - 1 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd(),
  );
}

const verdict = (r: GoalResult) => (r.pass ? 'pass' : `FAIL (${r.fault ?? '?'})`);

/** Totals of a run: passes, and failures by whose fault they were. */
export function summarise(run: EvalRun) {
  const total = run.results.length;
  const passed = run.results.filter((r) => r.pass).length;
  const faults = (who: string) => run.results.filter((r) => !r.pass && r.fault === who).length;
  const seconds = Math.round(run.results.reduce((s, r) => s + r.seconds, 0));
  return {
    total,
    passed,
    rate: total ? passed / total : 0,
    model: faults('model'),
    flotilla: faults('flotilla'),
    seconds,
  };
}

/** The run as a table: goal, verdict, steps, tool calls, tokens, seconds, why; then the totals. */
export function formatRun(run: EvalRun): string[] {
  const s = summarise(run);
  const rows = [
    ['goal', 'result', 'steps', 'tools', 'tokens', 'seconds', 'why'],
    ...run.results.map((r) => [
      r.id,
      verdict(r),
      String(r.steps),
      String(r.toolCalls),
      String(r.tokens),
      r.seconds.toFixed(1),
      r.why,
    ]),
  ];
  return [
    `eval ${run.label} (${run.provider}, ${run.model}), ${run.startedAt}`,
    ...table(rows),
    `passed ${s.passed}/${s.total} (${Math.round(s.rate * 100)}%); failures: ${s.model} model, ${s.flotilla} flotilla; ${s.seconds} s`,
  ];
}

/** Two runs side by side, goal by goal, with both totals: how a model, prompt or image change is judged. */
export function compareRuns(a: EvalRun, b: EvalRun): string[] {
  const ids = [...new Set([...a.results, ...b.results].map((r) => r.id))];
  const find = (run: EvalRun, id: string) => run.results.find((r) => r.id === id);
  const cell = (r: GoalResult | undefined) => (r ? `${verdict(r)} ${r.seconds.toFixed(0)}s ${r.tokens}t` : '-');
  const rows = [
    ['goal', a.label, b.label, 'change'],
    ...ids.map((id) => {
      const ra = find(a, id);
      const rb = find(b, id);
      const change = ra?.pass === rb?.pass ? '' : rb?.pass ? 'fixed' : 'broke';
      return [id, cell(ra), cell(rb), change];
    }),
  ];
  const line = (run: EvalRun) => {
    const s = summarise(run);
    return `${run.label}: passed ${s.passed}/${s.total}, ${s.model} model and ${s.flotilla} flotilla failures, ${s.seconds} s`;
  };
  return [...table(rows), line(a), line(b)];
}
