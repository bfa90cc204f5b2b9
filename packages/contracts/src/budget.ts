import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** A complete set of limits: what a container enforces and what a subtask is given. */
export const BudgetLimits = z.object({
  maxSteps: positiveInt.describe('Model turns'),
  maxToolCalls: positiveInt.describe('Tool invocations, retries excluded'),
  maxSeconds: z.number().positive().describe('Wall-clock seconds'),
  maxTokens: positiveInt.describe('Prompt plus completion tokens'),
});
export type BudgetLimits = z.infer<typeof BudgetLimits>;

/** What a caller may ask for; it can only tighten the container's limits, never loosen them. */
export const TaskBudget = BudgetLimits.partial().strict();
export type TaskBudget = z.infer<typeof TaskBudget>;

export const Usage = z.object({
  steps: z.number().int().nonnegative(),
  toolCalls: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
  ms: z.number().nonnegative(),
});
export type Usage = z.infer<typeof Usage>;

export const ZERO_USAGE: Usage = Object.freeze({ steps: 0, toolCalls: 0, tokens: 0, ms: 0 });
