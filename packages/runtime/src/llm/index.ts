export { type LlmConfig, llmConfigSchema } from './config.js';
export { type CreateLlmOptions, createLlm, llmConfigProblems } from './create.js';
export type { RetryInfo, RetryOptions } from './http.js';
export type {
  ChatMessage,
  ChatOptions,
  ChatRequest,
  ChatResponse,
  LlmClient,
  LlmToolCall,
  LlmToolSpec,
} from './types.js';
export { renderSubtaskOutput, renderUntrusted, UNTRUSTED_DATA_RULE } from './untrusted.js';
