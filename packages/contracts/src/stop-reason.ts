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
  /** An operator denied a tool call that needed approval (the model sees the denial and may go on). */
  'approval_denied',
  /** Nobody decided on a tool call that needed approval within APPROVAL_TIMEOUT_S: denied. */
  'approval_timeout',
  /**
   * The model's replies stayed unusable after the loop's repair turn: tool calls nobody could parse,
   * an empty answer, a conversation past its context window. The model's failing, not the mesh's.
   */
  'model_error',
]);
export type StopReason = z.infer<typeof StopReason>;

/** Stop reasons that come from a budget limit. */
export const BUDGET_STOP_REASONS = ['max_steps', 'max_tool_calls', 'max_seconds', 'max_tokens'] as const;
