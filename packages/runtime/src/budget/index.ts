export {
  type Budget,
  type BudgetKind,
  type BudgetOptions,
  type BudgetRemaining,
  type BudgetStopReason,
  createBudget,
} from './budget.js';
export { budgetFromEnvelope } from './envelope.js';
export { DeadlineExceededError, RunCancelledError, stopReasonOf } from './errors.js';
export { tightenLimits } from './limits.js';
