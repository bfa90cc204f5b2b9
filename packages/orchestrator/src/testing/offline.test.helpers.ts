import {
  type ChatOptions,
  type ChatRequest,
  type ChatResponse,
  createLlm,
  type LlmClient,
} from '@flotilla/runtime/llm';

/** The runtime's offline demo model: deterministic, no network; plans by splitting the goal into clauses. */
export const offlineLlm = (): LlmClient => createLlm({ LLM_PROVIDER: 'offline' });

/**
 * The offline model, except that planning calls answer with `plans` in turn, the last one
 * repeated (the model's JSON: role, input, dependsOn): for tests of plans the offline planner
 * would not write, such as dependencies and re-plans. `planning` counts the planning calls.
 */
export function plannedLlm(...plans: { subtasks: unknown[] }[]): LlmClient & { planning: number } {
  const offline = offlineLlm();
  const llm = {
    provider: offline.provider,
    model: offline.model,
    planning: 0,
    chat: async (request: ChatRequest, options?: ChatOptions): Promise<ChatResponse> =>
      request.responseFormat?.name === 'plan'
        ? {
            content: JSON.stringify(plans[Math.min(llm.planning++, plans.length - 1)]),
            toolCalls: [],
            finishReason: 'stop',
            usage: { promptTokens: 1, completionTokens: 1 },
            attempts: 1,
          }
        : offline.chat(request, options),
  };
  return llm;
}
