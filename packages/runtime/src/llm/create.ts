import type { ConfigProblem } from '../config/index.js';
import { anthropicChat } from './anthropic.js';
import { createClient } from './client.js';
import type { LlmConfig } from './config.js';
import { LlmConfigError } from './errors.js';
import type { RetryOptions } from './http.js';
import { OFFLINE_MODEL, offlineChat } from './offline.js';
import { openAiChat } from './openai.js';
import type { LlmClient } from './types.js';

/** Models used when LLM_MODEL is unset. An OpenAI-compatible server has no sensible default: say which. */
const DEFAULT_MODELS = {
  anthropic: 'claude-sonnet-4-5',
  openai: 'gpt-4o-mini',
  offline: OFFLINE_MODEL,
} as const;

const PUBLIC_URLS = { anthropic: 'https://api.anthropic.com', openai: 'https://api.openai.com' } as const;

export interface CreateLlmOptions {
  /** Overrides of the retry policy; tests inject `sleep`/`onRetry` to observe chosen delays. */
  retry?: Omit<RetryOptions, 'maxRetries' | 'timeoutMs'>;
}

/**
 * Which provider a config means: LLM_PROVIDER, else the vendor its key or base URL names. Never
 * the offline model by default (see llmConfigSchema).
 */
export function resolveProvider(config: Partial<LlmConfig>): LlmClient['provider'] {
  if (config.LLM_PROVIDER) return config.LLM_PROVIDER;
  if (config.LLM_BASE_URL ?? config.LLM_URL) return 'openai-compatible';
  if (config.ANTHROPIC_API_KEY) return 'anthropic';
  if (config.OPENAI_API_KEY) return 'openai';
  if (config.LLM_API_KEY) {
    throw new LlmConfigError(
      'LLM_PROVIDER',
      'set it (anthropic | openai | openai-compatible) when only LLM_API_KEY is given',
    );
  }
  // Never a silent fake in production: the offline model only when asked for by name.
  throw new LlmConfigError(
    'LLM_PROVIDER',
    'required, but not set: anthropic | openai | openai-compatible with LLM_API_KEY (or LLM_BASE_URL), or offline for the built-in demo model (not AI)',
  );
}

/** createLlm's verdict on a config as config problems: startService's `check`, so a bad one exits 78 like any other. */
export function llmConfigProblems(config: Partial<LlmConfig>): ConfigProblem[] {
  try {
    createLlm(config);
    return [];
  } catch (err) {
    if (err instanceof LlmConfigError) return [{ variable: err.variable, message: err.problem }];
    throw err;
  }
}

/**
 * The LLM client a config describes (see llmConfigSchema). Throws LlmConfigError for settings
 * that cannot work, at startup rather than at the first task; the message never holds a key.
 */
export function createLlm(config: Partial<LlmConfig>, options: CreateLlmOptions = {}): LlmClient {
  const provider = resolveProvider(config);
  const retry: RetryOptions = {
    ...options.retry,
    maxRetries: config.LLM_MAX_RETRIES ?? 3,
    timeoutMs: config.LLM_TIMEOUT_MS ?? 120_000,
  };
  const maxTokens = config.LLM_MAX_TOKENS ?? 4096;
  const baseUrl = config.LLM_BASE_URL ?? config.LLM_URL;

  switch (provider) {
    case 'offline':
      return createClient('offline', config.LLM_MODEL ?? DEFAULT_MODELS.offline, offlineChat());
    case 'anthropic': {
      const apiKey = config.LLM_API_KEY ?? config.ANTHROPIC_API_KEY;
      if (!apiKey)
        throw new LlmConfigError('LLM_API_KEY', 'required for LLM_PROVIDER=anthropic (or set ANTHROPIC_API_KEY)');
      const model = config.LLM_MODEL ?? DEFAULT_MODELS.anthropic;
      return createClient(
        'anthropic',
        model,
        anthropicChat({ model, apiKey, baseUrl: baseUrl ?? PUBLIC_URLS.anthropic, maxTokens, retry }),
      );
    }
    case 'openai': {
      const apiKey = config.LLM_API_KEY ?? config.OPENAI_API_KEY;
      if (!apiKey) throw new LlmConfigError('LLM_API_KEY', 'required for LLM_PROVIDER=openai (or set OPENAI_API_KEY)');
      const model = config.LLM_MODEL ?? DEFAULT_MODELS.openai;
      return createClient(
        'openai',
        model,
        openAiChat({ provider: 'openai', model, apiKey, baseUrl: baseUrl ?? PUBLIC_URLS.openai, maxTokens, retry }),
      );
    }
    case 'openai-compatible': {
      if (!baseUrl)
        throw new LlmConfigError('LLM_BASE_URL', 'required for LLM_PROVIDER=openai-compatible (or LLM_URL)');
      if (!config.LLM_MODEL) throw new LlmConfigError('LLM_MODEL', 'required for LLM_PROVIDER=openai-compatible');
      // Only LLM_API_KEY: OPENAI_API_KEY belongs to OpenAI and must not be handed to another server.
      return createClient(
        'openai-compatible',
        config.LLM_MODEL,
        openAiChat({
          provider: 'openai-compatible',
          model: config.LLM_MODEL,
          apiKey: config.LLM_API_KEY,
          baseUrl,
          maxTokens,
          retry,
        }),
      );
    }
  }
}
