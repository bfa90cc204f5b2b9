// Speaks each vendor's wire format to a local fake server (127.0.0.1, test-utils/fake-llm): no network, no SDK.
import { type FakeVendor, fakeReply, startFakeAnthropic, startFakeOpenAI } from '@flotilla/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBudget, stopReasonOf } from '../budget/index.js';
import { createLlm } from './create.js';
import {
  LlmAbortError,
  LlmBadResponseError,
  LlmContextOverflowError,
  LlmRequestRejectedError,
  LlmUnavailableError,
  LlmUnusableOutputError,
} from './errors.js';
import type { RetryInfo } from './http.js';
import type { ChatMessage, LlmClient, LlmToolSpec } from './types.js';

const KEY = 'sk-test-CANARY-0123456789abcdef';

type Kind = 'anthropic' | 'openai' | 'openai-compatible';
const cases: { kind: Kind; start: () => Promise<FakeVendor>; path: string }[] = [
  { kind: 'anthropic', start: () => startFakeAnthropic(), path: '/v1/messages' },
  { kind: 'openai', start: () => startFakeOpenAI(), path: '/v1/chat/completions' },
  { kind: 'openai-compatible', start: () => startFakeOpenAI(), path: '/v1/chat/completions' },
];

const searchTool: LlmToolSpec = {
  name: 'memory.search',
  description: 'Search notes',
  parameters: {
    type: 'object',
    properties: { query: { type: 'string' } },
    required: ['query'],
    additionalProperties: false,
  },
};

describe.each(cases)('$kind provider', ({ kind, start, path }) => {
  let fake: FakeVendor;
  let retries: RetryInfo[];
  let llm: LlmClient;

  const make = (maxRetries = 3) =>
    createLlm(
      {
        LLM_PROVIDER: kind,
        LLM_BASE_URL: kind === 'openai-compatible' ? `${fake.url}/v1` : fake.url,
        LLM_MODEL: 'test-model',
        LLM_API_KEY: KEY,
        LLM_MAX_RETRIES: maxRetries,
      },
      // Record the chosen waits and skip them: tests assert the computed delay, never wall time.
      { retry: { onRetry: (i) => retries.push(i), sleep: async () => {} } },
    );

  beforeEach(async () => {
    fake = await start();
    retries = [];
    llm = make();
  });
  afterEach(async () => {
    await fake.close();
  });

  const lastBody = () => fake.requests.at(-1)?.body as Record<string, unknown>;

  it('returns a text answer with usage, sending the key the vendor way', async () => {
    fake.script(fakeReply.text('Hello there', { prompt: 11, completion: 3 }));
    const budget = createBudget({ maxSteps: 5, maxToolCalls: 5, maxSeconds: 30, maxTokens: 1000 });
    const res = await llm.chat(
      {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
        ],
        maxTokens: 50,
      },
      { budget },
    );
    budget.dispose();
    expect(res).toMatchObject({ content: 'Hello there', toolCalls: [], finishReason: 'stop', attempts: 1 });
    expect(res.usage).toEqual({ promptTokens: 11, completionTokens: 3 });
    expect(budget.usage().tokens).toBe(14);

    const req = fake.requests[0];
    expect(req?.path).toBe(path);
    const body = req?.body as Record<string, unknown>;
    expect(body.model).toBe('test-model');
    if (kind === 'anthropic') {
      expect(req?.headers['x-api-key']).toBe(KEY);
      expect(req?.headers['anthropic-version']).toBe('2023-06-01');
      expect(body.system).toBe('Be brief.');
      expect(body.max_tokens).toBe(50);
      expect(body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);
    } else {
      expect(req?.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(body.messages).toEqual([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ]);
      expect(body[kind === 'openai' ? 'max_completion_tokens' : 'max_tokens']).toBe(50);
    }
  });

  it('round-trips tool calls: decodes the call, then serialises the call and its result back', async () => {
    fake.script(fakeReply.toolCall('memory_search', { query: 'oslo' }), fakeReply.text('Oslo has 700k people.'));
    const messages: ChatMessage[] = [{ role: 'user', content: 'How big is Oslo?' }];
    const first = await llm.chat({ messages, tools: [searchTool] });
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls).toHaveLength(1);
    const call = first.toolCalls[0];
    expect(call?.name).toBe('memory.search');
    expect(call?.arguments).toEqual({ query: 'oslo' });

    const offered = lastBody().tools as Record<string, unknown>[];
    if (kind === 'anthropic') {
      expect(offered).toEqual([
        { name: 'memory_search', description: 'Search notes', input_schema: searchTool.parameters },
      ]);
    } else {
      expect(offered).toEqual([
        {
          type: 'function',
          function: { name: 'memory_search', description: 'Search notes', parameters: searchTool.parameters },
        },
      ]);
    }

    messages.push({ role: 'assistant', content: '', toolCalls: first.toolCalls });
    messages.push({ role: 'tool', toolCallId: call?.id ?? '', name: 'memory.search', content: '{"hits":[]}' });
    const second = await llm.chat({ messages, tools: [searchTool] });
    expect(second.content).toBe('Oslo has 700k people.');

    const sent = lastBody().messages;
    if (kind === 'anthropic') {
      expect(sent).toEqual([
        { role: 'user', content: [{ type: 'text', text: 'How big is Oslo?' }] },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: call?.id, name: 'memory_search', input: { query: 'oslo' } }],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call?.id, content: '{"hits":[]}' }] },
      ]);
    } else {
      expect(sent).toEqual([
        { role: 'user', content: 'How big is Oslo?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: call?.id, type: 'function', function: { name: 'memory_search', arguments: '{"query":"oslo"}' } },
          ],
        },
        { role: 'tool', tool_call_id: call?.id, content: '{"hits":[]}' },
      ]);
    }
  });

  it('asks for structured output and returns the JSON text', async () => {
    const schema = {
      type: 'object',
      properties: { answer: { type: 'string' } },
      required: ['answer'],
      additionalProperties: false,
    };
    fake.script(fakeReply.json({ answer: '42' }));
    const res = await llm.chat({
      messages: [{ role: 'user', content: 'Answer?' }],
      responseFormat: { name: 'final answer', schema },
    });
    expect(JSON.parse(res.content)).toEqual({ answer: '42' });
    const body = lastBody();
    if (kind === 'anthropic') {
      expect(body.tool_choice).toEqual({ type: 'tool', name: 'final_answer' });
      expect(body.tools).toEqual([expect.objectContaining({ name: 'final_answer', input_schema: schema })]);
    } else {
      expect(body.response_format).toEqual({
        type: 'json_schema',
        json_schema: { name: 'final_answer', schema, strict: true },
      });
    }
  });

  it('waits out a 429 for at least its Retry-After (seconds), then succeeds on attempt 2', async () => {
    fake.script(fakeReply.rateLimit('2'), fakeReply.text('after the wait'));
    const res = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] });
    expect(res.content).toBe('after the wait');
    expect(res.attempts).toBe(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ attempt: 1, status: 429, retryAfterMs: 2000 });
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(2000);
    expect(fake.requests).toHaveLength(2);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    fake.script(fakeReply.rateLimit(new Date(Date.now() + 5_000).toUTCString()), fakeReply.text('ok'));
    const res = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] });
    expect(res.attempts).toBe(2);
    // HTTP dates have one-second resolution: the wait is 4-5 s from now.
    expect(retries[0]?.retryAfterMs).toBeGreaterThan(3_000);
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(retries[0]?.retryAfterMs ?? Number.POSITIVE_INFINITY);
  });

  it('retries 500s with growing backoff, then fails with a bounded, retryable error', async () => {
    llm = make(2);
    fake.script(fakeReply.forever(fakeReply.serverError(500, 'upstream exploded')));
    const err = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmUnavailableError);
    expect(err).toMatchObject({ code: 'FLOTILLA_LLM_UNAVAILABLE', retryable: true, status: 500, attempts: 3 });
    expect((err as Error).message).toContain('upstream exploded');
    expect(fake.requests).toHaveLength(3);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
    // Equal jitter: attempt n waits between half and all of base * 2^(n-1).
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(250);
    expect(retries[0]?.delayMs).toBeLessThanOrEqual(500);
    expect(retries[1]?.delayMs).toBeGreaterThanOrEqual(500);
    expect(retries[1]?.delayMs).toBeLessThanOrEqual(1000);
  });

  it('does not retry a 500 that says the model wrote an unparsable tool call', async () => {
    // llama.cpp's words when the model's tool call is in no format its parser knows.
    fake.script(
      fakeReply.forever(
        fakeReply.serverError(500, 'The model produced output that does not match the expected peg-native format'),
      ),
    );
    const err = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmUnusableOutputError);
    expect(err).toMatchObject({ code: 'FLOTILLA_LLM_UNUSABLE_OUTPUT', retryable: false, status: 500 });
    expect(fake.requests).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it('names a request longer than the context window as such, without retrying', async () => {
    fake.script(
      fakeReply.serverError(
        400,
        'request (9001 tokens) exceeds the available context size (8192 tokens), try increasing it',
      ),
    );
    const err = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmContextOverflowError);
    expect(err).toBeInstanceOf(LlmRequestRejectedError);
    expect(err).toMatchObject({ code: 'FLOTILLA_LLM_CONTEXT_OVERFLOW', retryable: false, status: 400 });
    expect(fake.requests).toHaveLength(1);
  });

  it('turns malformed JSON into a non-retryable LlmBadResponseError without retrying', async () => {
    fake.script(fakeReply.malformed());
    const err = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmBadResponseError);
    expect(err).toMatchObject({ code: 'FLOTILLA_LLM_BAD_RESPONSE', retryable: false });
    expect(fake.requests).toHaveLength(1);
  });

  it('cuts a response that never comes at the budget deadline, with the max_seconds reason', async () => {
    fake.script(fakeReply.hang());
    const budget = createBudget({ maxSteps: 5, maxToolCalls: 5, maxSeconds: 0.3, maxTokens: 1000 });
    const err = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] }, { budget }).catch((e: unknown) => e);
    budget.dispose();
    expect(err).toBeInstanceOf(LlmAbortError);
    expect((err as LlmAbortError).name).toBe('AbortError');
    expect((err as LlmAbortError).reason).toBe(budget.signal.reason);
    expect(stopReasonOf((err as LlmAbortError).reason)).toBe('max_seconds');
    expect(stopReasonOf(err)).toBe('max_seconds');
    // Past its deadline, running the job again cannot help.
    expect((err as LlmAbortError).retryable).toBe(false);
  });

  it('rejects with the signal reason when the caller aborts mid-request', async () => {
    fake.script(fakeReply.hang());
    const ac = new AbortController();
    const reason = new Error('task cancelled');
    const pending = llm.chat({ messages: [{ role: 'user', content: 'Hi' }] }, { signal: ac.signal });
    const { waitFor } = await import('@flotilla/test-utils');
    await waitFor(() => fake.requests.length === 1);
    ac.abort(reason);
    // Not a budget stop (a shutdown, say): another replica may run the job again.
    await expect(pending).rejects.toMatchObject({
      name: 'AbortError',
      code: 'FLOTILLA_LLM_ABORTED',
      reason,
      retryable: true,
    });
  });

  it('reports a 4xx as a non-retryable error with the vendor message and never the key', async () => {
    fake.script(
      fakeReply.error(401, `Incorrect API key provided: ${KEY}. You can find your API key at the dashboard.`),
    );
    const err = await llm.chat({ messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmRequestRejectedError);
    expect(err).toMatchObject({ code: 'FLOTILLA_LLM_REQUEST_REJECTED', retryable: false, status: 401 });
    const e = err as Error;
    expect(e.message).toContain('Incorrect API key provided');
    for (const text of [e.message, String(e), e.stack ?? '', JSON.stringify(e), JSON.stringify(e.cause ?? null)]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain('CANARY');
    }
    expect(fake.requests).toHaveLength(1);
  });

  it('serves a runaway model that calls a tool on every turn', async () => {
    fake.script(fakeReply.alwaysToolCall('memory_search', { query: 'again' }));
    for (let i = 0; i < 3; i++) {
      const res = await llm.chat({ messages: [{ role: 'user', content: 'Go' }], tools: [searchTool] });
      expect(res.toolCalls.map((c) => c.name)).toEqual(['memory.search']);
    }
  });
});

describe('anthropic wire details', () => {
  it('folds consecutive tool results into one user turn', async () => {
    const fake = await startFakeAnthropic();
    try {
      const llm = createLlm({ LLM_PROVIDER: 'anthropic', LLM_BASE_URL: fake.url, ANTHROPIC_API_KEY: KEY });
      const calls = [
        { id: 'toolu_1', name: 'memory.search', arguments: { query: 'a' } },
        { id: 'toolu_2', name: 'memory.search', arguments: { query: 'b' } },
      ];
      await llm.chat({
        messages: [
          { role: 'user', content: 'Go' },
          { role: 'assistant', content: 'Looking.', toolCalls: calls },
          { role: 'tool', toolCallId: 'toolu_1', name: 'memory.search', content: 'A' },
          { role: 'tool', toolCallId: 'toolu_2', name: 'memory.search', content: 'B' },
        ],
        tools: [searchTool],
      });
      const body = fake.requests[0]?.body as { messages: unknown[] };
      expect(body.messages).toHaveLength(3);
      expect(body.messages[1]).toEqual({
        role: 'assistant',
        content: [
          { type: 'text', text: 'Looking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'memory_search', input: { query: 'a' } },
          { type: 'tool_use', id: 'toolu_2', name: 'memory_search', input: { query: 'b' } },
        ],
      });
      expect(body.messages[2]).toEqual({
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: 'A' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'B' },
        ],
      });
    } finally {
      await fake.close();
    }
  });
});

describe('openai wire details', () => {
  it('asks for strict json_schema only when the schema allows it', async () => {
    const fake = await startFakeOpenAI();
    try {
      const llm = createLlm({ LLM_PROVIDER: 'openai', LLM_BASE_URL: fake.url, OPENAI_API_KEY: KEY });
      fake.script(fakeReply.json({ a: 'x' }));
      const loose = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'string' } }, required: ['a'] };
      await llm.chat({ messages: [{ role: 'user', content: 'x' }], responseFormat: { name: 'loose', schema: loose } });
      const body = fake.requests[0]?.body as { response_format: { json_schema: { strict: boolean } } };
      expect(body.response_format.json_schema.strict).toBe(false);
    } finally {
      await fake.close();
    }
  });

  it('charges the tokens of an unusable answer to the budget', async () => {
    const fake = await startFakeOpenAI();
    try {
      const llm = createLlm({ LLM_PROVIDER: 'openai', LLM_BASE_URL: fake.url, OPENAI_API_KEY: KEY });
      // Valid JSON envelope, but the tool arguments are not JSON: the vendor still billed it.
      fake.script(fakeReply.toolCallRaw('memory_search', '{not json', { prompt: 20, completion: 5 }));
      const budget = createBudget({ maxSteps: 5, maxToolCalls: 5, maxSeconds: 30, maxTokens: 1000 });
      const err = await llm
        .chat({ messages: [{ role: 'user', content: 'x' }], tools: [searchTool] }, { budget })
        .catch((e: unknown) => e);
      budget.dispose();
      expect(err).toBeInstanceOf(LlmUnusableOutputError);
      expect(err).toMatchObject({ code: 'FLOTILLA_LLM_UNUSABLE_OUTPUT', retryable: false });
      expect((err as LlmUnusableOutputError).hint).toContain('memory.search');
      expect(budget.usage().tokens).toBe(25);
    } finally {
      await fake.close();
    }
  });
});
