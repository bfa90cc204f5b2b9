import { z } from 'zod';
import { envField, secret } from '../config/index.js';

const optionalUrl = () => envField.url(['http', 'https']).optional();
const optionalKey = () => secret(z.string().trim().min(1)).optional();

/**
 * LLM settings every service merges into its config (`...llmConfigSchema.shape`). Defaults:
 *
 * | variable          | default                         | why |
 * |-------------------|---------------------------------|-----|
 * | LLM_PROVIDER      | inferred from a key or URL, else required | a key or URL picks its vendor; `offline` (the demo model, not AI) only when named, so production never runs a fake by accident |
 * | LLM_MODEL         | per provider (see DEFAULT_MODELS) | Compose `models:` also sets it (`<NAME>_MODEL`) |
 * | LLM_BASE_URL      | the vendor's public API         | |
 * | LLM_URL           | unset                           | what Compose `models:` injects for a model named `llm` |
 * | LLM_API_KEY       | unset (secret; or LLM_API_KEY_FILE) | |
 * | LLM_MAX_RETRIES   | 3                               | enough to ride out a 429 burst, few enough to fail inside a budget |
 * | LLM_TIMEOUT_MS    | 120000                          | per attempt; a hung socket becomes a retry |
 * | LLM_MAX_TOKENS    | 4096                            | completion cap when a request names none (Anthropic requires one) |
 */
export const llmConfigSchema = z.object({
  /** anthropic | openai | openai-compatible | offline. Unset: anthropic/openai if their key is set, openai-compatible if a base URL is, else a config error. */
  LLM_PROVIDER: z.enum(['anthropic', 'openai', 'openai-compatible', 'offline']).optional(),
  /** Model id, e.g. `claude-sonnet-4-5`, `gpt-4o-mini`, `ai/smollm2`, `llama3.2`. */
  LLM_MODEL: z.string().trim().min(1).optional(),
  /** API root (with or without /v1): Ollama `http://ollama:11434`, vLLM `http://vllm:8000/v1`. */
  LLM_BASE_URL: optionalUrl(),
  /** Alias of LLM_BASE_URL: the variable Compose `models:` (short syntax) sets for a model named `llm`. */
  LLM_URL: optionalUrl(),
  /** Key for the chosen vendor. Never logged; prefer LLM_API_KEY_FILE. */
  LLM_API_KEY: optionalKey(),
  /** Convenience: the key Anthropic's own tools read. Used when LLM_API_KEY is unset. */
  ANTHROPIC_API_KEY: optionalKey(),
  /** Convenience: the key OpenAI's own tools read. Used when LLM_API_KEY is unset (never sent to a compatible server). */
  OPENAI_API_KEY: optionalKey(),
  /** Retries after the first attempt for 429/5xx/timeouts, with backoff honouring Retry-After. */
  LLM_MAX_RETRIES: envField.nonNegativeInt().default(3),
  /** Per-attempt timeout in ms. */
  LLM_TIMEOUT_MS: envField.positiveInt().default(120_000),
  /** Completion tokens per call when the request names none. */
  LLM_MAX_TOKENS: envField.positiveInt().default(4096),
});
export type LlmConfig = z.output<typeof llmConfigSchema>;
