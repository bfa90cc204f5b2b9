import { type BudgetLimits, CONTRACT_VERSION } from '@flotilla/contracts';
import { createBudget } from '../budget/index.js';
import { createLlm, type LlmClient } from '../llm/index.js';
import { createLogger } from '../logger/index.js';
import type { ToolOutcome } from '../tools/index.js';
import type { AgentContext, RunTools } from '../worker/index.js';

export interface TestAgentContextOptions {
  /** The model. Default: the offline model (deterministic, no network, no key). */
  llm?: LlmClient;
  /**
   * What `ctx.tools` does. Default: no tools are offered and a call is denied as an unknown tool, as
   * the gateway denies a tool the role does not have.
   */
  tools?: RunTools;
  /** The run's limits. Default: 10 steps, 10 tool calls, 60 s, 100,000 tokens. */
  limits?: Partial<BudgetLimits>;
  /** The role in the identity and the envelope. Default 'test'. */
  role?: string;
}

const DEFAULT_LIMITS: BudgetLimits = { maxSteps: 10, maxToolCalls: 10, maxSeconds: 60, maxTokens: 100_000 };

const noTools: RunTools = {
  specs: () => [],
  call: async (name): Promise<ToolOutcome> => ({
    ok: false,
    stopReason: 'policy_denied',
    code: 'unknown_tool',
    message: `no tool named "${name}"`,
    attempts: 0,
  }),
};

/**
 * An AgentContext for unit tests of a role's handler: a real budget and a real model client (the
 * offline one unless given), no Redis, no queue. It is what a handler sees inside runWorker, minus
 * the run's bookkeeping, so the handler's own logic can be tested without a mesh. Call
 * `ctx.budget.dispose()` when done to clear its deadline timer.
 */
export function testAgentContext(options: TestAgentContextOptions = {}): AgentContext {
  const role = options.role ?? 'test';
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const budget = createBudget(limits);
  return {
    budget,
    tools: options.tools ?? noTools,
    llm: options.llm ?? createLlm({ LLM_PROVIDER: 'offline' }),
    memory: undefined,
    log: createLogger({ service: role, level: 'silent' }),
    signal: budget.signal,
    envelope: {
      v: CONTRACT_VERSION,
      taskId: 'test-task',
      subtaskId: 's1',
      role,
      input: {},
      budget: limits,
      deadline: Date.now() + limits.maxSeconds * 1000,
      attempt: 1,
    },
    identity: { role, replica: `${role}-test`, version: '0.0.0-test' },
  };
}
