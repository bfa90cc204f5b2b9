export { type LlmConfig, llmConfigSchema } from './config.js';
export { type CreateLlmOptions, createLlm, DEFAULT_MODELS, llmConfigProblems, resolveProvider } from './create.js';
export {
  LlmAbortError,
  LlmBadResponseError,
  LlmConfigError,
  LlmError,
  LlmRequestRejectedError,
  LlmUnavailableError,
} from './errors.js';
export type { RetryInfo, RetryOptions } from './http.js';
export { OFFLINE_MODEL, splitClauses } from './offline.js';
export type {
  ChatMessage,
  ChatOptions,
  ChatRequest,
  ChatResponse,
  LlmClient,
  LlmToolCall,
  LlmToolSpec,
} from './types.js';
