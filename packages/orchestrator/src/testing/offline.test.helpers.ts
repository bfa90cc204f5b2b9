import { createLlm, type LlmClient } from '@flotilla/runtime/llm';

/** The runtime's offline demo model: deterministic, no network; plans by splitting the goal into clauses. */
export const offlineLlm = (): LlmClient => createLlm({ LLM_PROVIDER: 'offline' });
