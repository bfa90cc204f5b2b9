import type { BudgetLimits, SubtaskEnvelope } from '@flotilla/contracts';
import { type Budget, type BudgetOptions, createBudget } from './budget.js';
import { tightenLimits } from './limits.js';

/**
 * A subtask's budget: the envelope's slice tightened by this container's limits, ending at the earlier
 * of the envelope's deadline (set by the orchestrator for the whole task, so queue time counts) and
 * now + maxSeconds.
 */
export function budgetFromEnvelope(
  envelope: Pick<SubtaskEnvelope, 'budget' | 'deadline'>,
  containerLimits: BudgetLimits,
  options: Omit<BudgetOptions, 'deadline'> = {},
): Budget {
  return createBudget(tightenLimits(containerLimits, envelope.budget), { ...options, deadline: envelope.deadline });
}
