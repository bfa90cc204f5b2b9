import { z } from 'zod';

/** Why an agent run ended. Data, not an exception: every run ends with exactly one. */
export const StopReason = z.enum([
  'finish',
  'max_steps',
  'max_tool_calls',
  'max_seconds',
  'max_tokens',
  'policy_denied',
  'kill_switch',
  'tool_error',
  'invalid_input',
  'cancelled',
  'runtime_error',
  /** Never ran: a subtask it depends on did not finish ok. */
  'dependency_failed',
]);
export type StopReason = z.infer<typeof StopReason>;

/** Stop reasons that come from a budget limit. */
export const BUDGET_STOP_REASONS = ['max_steps', 'max_tool_calls', 'max_seconds', 'max_tokens'] as const;
