import { describe, expect, it } from 'vitest';
import { llmConfigSchema } from './config.js';
import { createLlm, llmConfigProblems, resolveProvider } from './create.js';
import { LlmConfigError } from './errors.js';
import { backoffDelay, parseRetryAfter, scrub } from './http.js';
import { apiUrl } from './openai.js';

describe('llm config', () => {
  it('parses an empty environment to defaults, but chooses no provider for it: no silent fake model', () => {
    const config = llmConfigSchema.parse({});
    expect(config).toMatchObject({ LLM_MAX_RETRIES: 3, LLM_TIMEOUT_MS: 120_000, LLM_MAX_TOKENS: 4096 });
    expect(() => resolveProvider(config)).toThrow(/^LLM_PROVIDER: required, but not set/);
    expect(llmConfigProblems(config)).toEqual([
      { variable: 'LLM_PROVIDER', message: expect.stringMatching(/^required, but not set: .*offline/) },
    ]);
    const offline = llmConfigSchema.parse({ LLM_PROVIDER: 'offline' });
    expect(llmConfigProblems(offline)).toEqual([]);
    expect(createLlm(offline).provider).toBe('offline');
  });

  it('reads numbers from env strings', () => {
    expect(llmConfigSchema.parse({ LLM_MAX_RETRIES: '0' }).LLM_MAX_RETRIES).toBe(0);
    expect(llmConfigSchema.safeParse({ LLM_MAX_RETRIES: 'lots' }).success).toBe(false);
  });

  it('infers the provider from keys and URLs', () => {
    expect(resolveProvider({ ANTHROPIC_API_KEY: 'k' })).toBe('anthropic');
    expect(resolveProvider({ OPENAI_API_KEY: 'k' })).toBe('openai');
    expect(resolveProvider({ LLM_BASE_URL: 'http://ollama:11434' })).toBe('openai-compatible');
    expect(resolveProvider({ LLM_PROVIDER: 'offline', OPENAI_API_KEY: 'k' })).toBe('offline');
    expect(() => resolveProvider({ LLM_API_KEY: 'k' })).toThrow(LlmConfigError);
  });

  it('takes the variables Compose models: injects (LLM_URL, LLM_MODEL) for Docker Model Runner', () => {
    const llm = createLlm(
      llmConfigSchema.parse({ LLM_URL: 'http://model-runner.docker.internal/engines/v1/', LLM_MODEL: 'ai/smollm2' }),
    );
    expect(llm.provider).toBe('openai-compatible');
    expect(llm.model).toBe('ai/smollm2');
  });

  it('fails fast, without the key, on settings that cannot work', () => {
    expect(() => createLlm({ LLM_PROVIDER: 'anthropic' })).toThrow(/LLM_API_KEY: required/);
    expect(llmConfigProblems({ LLM_PROVIDER: 'openai' })).toEqual([
      { variable: 'LLM_API_KEY', message: expect.stringMatching(/^required for LLM_PROVIDER=openai/) },
    ]);
    expect(() => createLlm({ LLM_PROVIDER: 'openai-compatible', LLM_MODEL: 'm' })).toThrow(/LLM_BASE_URL: required/);
    expect(() => createLlm({ LLM_PROVIDER: 'openai-compatible', LLM_URL: 'http://x:1' })).toThrow(
      /LLM_MODEL: required/,
    );
  });

  it('joins API paths whether or not the base URL ends in /v1', () => {
    expect(apiUrl('http://h:1', '/chat/completions')).toBe('http://h:1/v1/chat/completions');
    expect(apiUrl('http://h:1/engines/v1/', '/chat/completions')).toBe('http://h:1/engines/v1/chat/completions');
  });
});

describe('retry policy', () => {
  const headers = (h: Record<string, string>) => new Headers(h);

  it('reads Retry-After as seconds, as an HTTP date, and retry-after-ms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter(headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(parseRetryAfter(headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:07 GMT' }), now)).toBe(7000);
    expect(parseRetryAfter(headers({ 'retry-after-ms': '1500', 'retry-after': '9' }), now)).toBe(1500);
    expect(parseRetryAfter(headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfter(headers({}), now)).toBeUndefined();
  });

  it('backs off exponentially with jitter and never undercuts Retry-After', () => {
    const lo = { baseDelayMs: 100, random: () => 0 };
    const hi = { baseDelayMs: 100, random: () => 0.999999 };
    expect([1, 2, 3].map((n) => backoffDelay(n, undefined, lo))).toEqual([50, 100, 200]);
    expect([1, 2, 3].map((n) => backoffDelay(n, undefined, hi))).toEqual([100, 200, 400]);
    expect(backoffDelay(1, 5000, hi)).toBe(5000);
    expect(backoffDelay(10, undefined, { baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999 })).toBe(1000);
  });

  it('scrubs keys, including masked echoes of them', () => {
    expect(scrub('bad key sk-live-abcdef123456 here', ['sk-live-abcdef123456'])).toBe('bad key [REDACTED] here');
    expect(scrub('Incorrect API key provided: sk-abc***************wxyz.', [])).not.toContain('sk-abc');
  });
});
