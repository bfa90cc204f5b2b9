import { describe, expect, it } from 'vitest';
import { createLlm } from './create.js';
import { splitClauses } from './offline.js';
import type { ChatMessage, ChatRequest, LlmToolSpec } from './types.js';

const llm = createLlm({ LLM_PROVIDER: 'offline' });

const researcherInput = {
  type: 'object',
  properties: { question: { type: 'string', minLength: 1, maxLength: 4000 }, context: { type: 'string' } },
  required: ['question'],
  additionalProperties: false,
};
const coderInput = {
  type: 'object',
  properties: {
    task: { type: 'string', minLength: 1 },
    language: { type: 'string', enum: ['javascript', 'python'], default: 'javascript' },
  },
  required: ['task', 'language'],
  additionalProperties: false,
};
const branch = (role: string, input: Record<string, unknown>) => ({
  type: 'object',
  properties: { role: { const: role }, input },
  required: ['role', 'input'],
});
const planSchema = (branches: Record<string, unknown>[]) => ({
  type: 'object',
  properties: { subtasks: { type: 'array', minItems: 1, maxItems: 8, items: { anyOf: branches } } },
  required: ['subtasks'],
});

const planRequest = (
  goal: string,
  branches = [branch('researcher', researcherInput), branch('coder', coderInput)],
): ChatRequest => ({
  messages: [
    { role: 'system', content: 'You are the planner.' },
    { role: 'user', content: goal },
  ],
  responseFormat: { name: 'plan', schema: planSchema(branches) },
});

const tools: LlmToolSpec[] = [
  {
    name: 'memory.search',
    description: 'search notes',
    parameters: {
      type: 'object',
      properties: { query: { type: 'string' }, n: { type: 'integer', default: 5 } },
      required: ['query'],
    },
  },
  {
    name: 'http.get',
    description: 'fetch a page',
    parameters: { type: 'object', properties: { url: { type: 'string', format: 'uri' } }, required: ['url'] },
  },
];

describe('offline provider', () => {
  it('is the default without a key or a provider, and says so', () => {
    expect(llm.provider).toBe('offline');
    expect(llm.model).toBe('offline-demo');
  });

  it('answers the same request with the same response', async () => {
    const req = planRequest('Find the population of Oslo; write code to compute its square root');
    const a = await llm.chat(req);
    const b = await llm.chat(req);
    expect(b).toEqual(a);
    expect(a.attempts).toBe(1);
    expect(a.usage.promptTokens).toBeGreaterThan(0);
    expect(a.usage.completionTokens).toBe(Math.ceil(a.content.length / 4));
  });

  it('splits "A; B; write code to compute C" into 3 subtasks, the third for the coder', async () => {
    const res = await llm.chat(
      planRequest('Summarise the history of Rome; list three Roman emperors; write code to compute 7 factorial'),
    );
    const plan = JSON.parse(res.content) as { subtasks: { role: string; input: Record<string, unknown> }[] };
    expect(plan.subtasks.map((s) => s.role)).toEqual(['researcher', 'researcher', 'coder']);
    expect(plan.subtasks[0]?.input).toEqual({ question: 'Summarise the history of Rome' });
    expect(plan.subtasks[2]?.input).toEqual({ task: 'write code to compute 7 factorial', language: 'javascript' });
  });

  it('sends code clauses to the first other role when no coder is offered', async () => {
    const res = await llm.chat(planRequest('calculate 2+2', [branch('researcher', researcherInput)]));
    expect(JSON.parse(res.content)).toEqual({
      subtasks: [{ role: 'researcher', input: { question: 'calculate 2+2' } }],
    });
  });

  it('splits on lines, numbered and bulleted items, and " and then ", and keeps at most maxItems', () => {
    expect(splitClauses('1. alpha\n2) beta\n- gamma\n* delta and then epsilon')).toEqual([
      'alpha',
      'beta',
      'gamma',
      'delta',
      'epsilon',
    ]);
    expect(splitClauses('a; b; c; d', 3)).toEqual(['a', 'b', 'c; d']);
    expect(splitClauses('just one goal')).toEqual(['just one goal']);
  });

  it('fills any other response format generically, writing code in the chosen language', async () => {
    const res = await llm.chat({
      messages: [{ role: 'user', content: 'Task: print hello\nLanguage: javascript' }],
      responseFormat: {
        name: 'code',
        schema: {
          type: 'object',
          properties: {
            language: { type: 'string', enum: ['javascript', 'python'] },
            code: { type: 'string', minLength: 1 },
          },
          required: ['language', 'code'],
        },
      },
    });
    expect(JSON.parse(res.content)).toEqual({ language: 'javascript', code: 'console.log("print hello");\n' });
  });

  it('calls each feasible tool once, skips tools it cannot fill, then answers from the observations', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'research' },
      { role: 'user', content: 'What is flotilla?' },
    ];
    const first = await llm.chat({ messages, tools });
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls).toHaveLength(1);
    const call = first.toolCalls[0];
    expect(call?.name).toBe('memory.search');
    expect(call?.arguments).toEqual({ query: 'What is flotilla?', n: 5 });

    messages.push({ role: 'assistant', content: '', toolCalls: first.toolCalls });
    messages.push({
      role: 'tool',
      toolCallId: call?.id ?? '',
      name: 'memory.search',
      content: '{"hits":["a fleet of agents"]}',
    });
    // http.get needs a URL and the question has none: the model answers instead of inventing one.
    const second = await llm.chat({ messages, tools });
    expect(second.toolCalls).toEqual([]);
    expect(second.finishReason).toBe('stop');
    expect(second.content).toContain('What is flotilla?');
    expect(second.content).toContain('memory.search: {"hits":["a fleet of agents"]}');
  });

  it('uses a URL from the text for url arguments', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: 'Read https://example.org/page.html, please.' }];
    const res = await llm.chat({ messages, tools: [tools[1] as LlmToolSpec] });
    expect(res.toolCalls[0]?.arguments).toEqual({ url: 'https://example.org/page.html' });
  });

  it('summarises the user message and its bullets when no tools are offered', async () => {
    const res = await llm.chat({
      messages: [
        {
          role: 'user',
          content: 'Goal: compare A and B\n\nSubtask results:\n- s1 (researcher): A is fast\n- s2 (coder): B prints 42',
        },
      ],
    });
    expect(res.content).toContain('compare A and B');
    expect(res.content).toContain('- s1 (researcher): A is fast');
    expect(res.content).toContain('- s2 (coder): B prints 42');
  });

  it('rejects at once when the signal has already fired', async () => {
    const ac = new AbortController();
    const reason = new Error('stop now');
    ac.abort(reason);
    await expect(llm.chat(planRequest('x'), { signal: ac.signal })).rejects.toMatchObject({
      name: 'AbortError',
      reason,
    });
  });
});
