import type { BudgetLimits, TaskBudget } from '@flotilla/contracts';

const FIELDS = ['maxSteps', 'maxToolCalls', 'maxSeconds', 'maxTokens'] as const;

/**
 * The limits a run actually gets: per field, the smaller of the container's limit and the task's ask.
 *
 * A task budget can only tighten. A caller asking for more than the container allows is clamped
 * silently rather than rejected, because the container's limits are an operator's safety bound, not
 * part of the API contract: a client written against a generous deployment keeps working against a
 * strict one, it just gets less. Fields the task leaves out keep the container's value.
 */
export function tightenLimits(container: BudgetLimits, task?: TaskBudget | Partial<BudgetLimits>): BudgetLimits {
  const out = { ...container };
  if (!task) return out;
  for (const field of FIELDS) {
    const ask = task[field];
    if (ask !== undefined && Number.isFinite(ask) && ask > 0) out[field] = Math.min(container[field], ask);
  }
  return out;
}
