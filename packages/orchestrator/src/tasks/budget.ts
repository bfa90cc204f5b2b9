import type { BudgetLimits } from '@flotilla/contracts';

/**
 * One subtask's slice of the task's limits. Subtasks run in parallel, so the countable limits
 * (steps, tool calls, tokens) are divided between them (at least 1 each, so a tiny budget still
 * lets every subtask try once), while time is not divided: every subtask may use what is left
 * until the task's deadline.
 */
export function splitBudget(limits: BudgetLimits, subtasks: number, deadline: number, now = Date.now()): BudgetLimits {
  const n = Math.max(1, Math.floor(subtasks));
  const share = (total: number) => Math.max(1, Math.floor(total / n));
  // Whole seconds keep envelopes readable; the envelope's deadline is the exact bound workers enforce.
  const secondsLeft = Math.max(1, Math.ceil((deadline - now) / 1000));
  return {
    maxSteps: share(limits.maxSteps),
    maxToolCalls: share(limits.maxToolCalls),
    maxTokens: share(limits.maxTokens),
    maxSeconds: Math.min(limits.maxSeconds, secondsLeft),
  };
}
