import type { RoleInfo } from '@flotilla/contracts';
import type { ChatRequest, ChatResponse, LlmClient } from '@flotilla/runtime/llm';
import { describe, expect, it } from 'vitest';
import { createPlanner } from './planner.js';
import { planResponseSchema } from './schema.js';

const researcher: RoleInfo = {
  role: 'researcher',
  description: 'Finds facts',
  replicas: 2,
  versions: ['1.0.0'],
  inputSchema: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: { question: { type: 'string', minLength: 1 }, url: { type: 'string', format: 'uri' } },
    required: ['question'],
    additionalProperties: false,
  },
};
const coder: RoleInfo = {
  role: 'coder',
  description: 'Writes and runs code',
  replicas: 1,
  versions: ['1.0.0'],
  inputSchema: { type: 'object', properties: { task: { type: 'string' } }, required: ['task'] },
};

/** An LlmClient that answers each chat with the next scripted JSON text and records the requests. */
function scripted(...answers: string[]): LlmClient & { requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  return {
    provider: 'offline',
    model: 'scripted',
    requests,
    async chat(request): Promise<ChatResponse> {
      requests.push(request);
      const content = answers[requests.length - 1];
      if (content === undefined) throw new Error('no more scripted answers');
      return {
        content,
        toolCalls: [],
        finishReason: 'stop',
        usage: { promptTokens: 10, completionTokens: 5 },
        attempts: 1,
      };
    },
  };
}

describe('the planner prompt', () => {
  it('shows the examples the live roles publish, as one-subtask plans, and leaves oversized ones out', async () => {
    const withExamples: RoleInfo = {
      ...coder,
      examples: [
        { goal: 'What is 17!?', input: { task: 'Print 17 factorial.' } },
        { goal: 'Too big', input: { task: 'x'.repeat(700) } },
      ],
    };
    const llm = scripted(JSON.stringify({ subtasks: [{ role: 'coder', input: { task: 'Print 2+2.' } }] }));
    const outcome = await createPlanner({ llm }).plan('What is 2+2?', [researcher, withExamples]);
    expect(outcome.ok).toBe(true);
    const system = llm.requests[0]?.messages[0]?.content ?? '';
    expect(system).toContain(
      'Examples:\nGoal: "What is 17!?"\nPlan: {"subtasks":[{"role":"coder","input":{"task":"Print 17 factorial."}}]}',
    );
    expect(system).not.toContain('Too big');
  });

  it('has no examples section when no role publishes any', async () => {
    const llm = scripted(JSON.stringify({ subtasks: [{ role: 'coder', input: { task: 'Print 2+2.' } }] }));
    await createPlanner({ llm }).plan('What is 2+2?', [researcher, coder]);
    expect(llm.requests[0]?.messages[0]?.content).not.toContain('Examples:');
  });
});

describe('a role scaled to zero', () => {
  it('is offered to the model like a running one, marked as starting on demand, and its subtask is planned', async () => {
    const idle: RoleInfo = { ...coder, replicas: 0, versions: [], scalesToZero: true };
    const llm = scripted(JSON.stringify({ subtasks: [{ role: 'coder', input: { task: 'Print 2+2.' } }] }));
    const outcome = await createPlanner({ llm }).plan('What is 2+2?', [researcher, idle]);
    expect(outcome).toMatchObject({ ok: true, subtasks: [{ subtaskId: 's1', role: 'coder' }] });
    const system = llm.requests[0]?.messages[0]?.content ?? '';
    expect(system).toContain('- coder: Writes and runs code (starts on demand: slower to begin)');
    expect(system).toContain('- researcher: Finds facts\n');
  });
});

describe('planResponseSchema', () => {
  it('offers one anyOf branch per live role, pinned by const, with the role input schema embedded', () => {
    const schema = planResponseSchema([researcher, coder], 8) as {
      properties: { subtasks: { minItems: number; maxItems: number; items: { anyOf: Record<string, unknown>[] } } };
    };
    const subtasks = schema.properties.subtasks;
    expect(subtasks.minItems).toBe(1);
    expect(subtasks.maxItems).toBe(8);
    expect(subtasks.items.anyOf).toHaveLength(2);
    expect(subtasks.items.anyOf[0]).toMatchObject({
      properties: { role: { const: 'researcher' }, input: { required: ['question'] } },
      required: ['role', 'input'],
      additionalProperties: false,
    });
    // `$schema` only belongs at a document's root.
    expect(JSON.stringify(subtasks.items.anyOf[0])).not.toContain('$schema');
  });
});

describe('planner', () => {
  it('turns a valid plan into numbered subtasks and asks for the plan response format', async () => {
    const llm = scripted(
      JSON.stringify({
        subtasks: [
          { role: 'researcher', input: { question: 'a?' } },
          { role: 'coder', input: { task: 'b' } },
        ],
      }),
    );
    const out = await createPlanner({ llm }).plan('a; b', [researcher, coder]);
    expect(out).toEqual({
      ok: true,
      repaired: false,
      tokens: 15,
      subtasks: [
        { subtaskId: 's1', role: 'researcher', input: { question: 'a?' } },
        { subtaskId: 's2', role: 'coder', input: { task: 'b' } },
      ],
    });
    expect(llm.requests[0]?.responseFormat?.name).toBe('plan');
    expect(llm.requests[0]?.messages.at(-1)).toEqual({ role: 'user', content: 'a; b' });
  });

  it('repairs an invalid plan once, telling the model what was wrong', async () => {
    const llm = scripted(
      JSON.stringify({ subtasks: [{ role: 'researcher', input: { url: 'not a url' } }] }),
      JSON.stringify({ subtasks: [{ role: 'researcher', input: { question: 'fixed' } }] }),
    );
    const out = await createPlanner({ llm }).plan('goal', [researcher]);
    expect(out).toMatchObject({ ok: true, repaired: true, subtasks: [{ input: { question: 'fixed' } }] });
    const repair = llm.requests[1]?.messages[0]?.content ?? '';
    expect(repair).toContain('subtasks.0.input.question: is required');
    expect(repair).toContain('subtasks.0.input.url: must match format "uri"');
    // The goal stays the last user message, so any planner reads the same goal.
    expect(llm.requests[1]?.messages.at(-1)).toEqual({ role: 'user', content: 'goal' });
  });

  it('fails with plan_invalid naming the problem when the repair is invalid too', async () => {
    const bad = JSON.stringify({ subtasks: [{ role: 'painter', input: {} }] });
    const out = await createPlanner({ llm: scripted(bad, bad) }).plan('goal', [researcher]);
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.reason).toMatch(/^plan_invalid: /);
      expect(out.reason).toContain('subtasks.0.role: "painter" is not a live role (live: researcher)');
      expect(out.tokens).toBe(30);
    }
  });

  it('rejects non-JSON, empty and oversized plans', async () => {
    const tooMany = JSON.stringify({
      subtasks: Array.from({ length: 3 }, () => ({ role: 'coder', input: { task: 'x' } })),
    });
    const cases: [string, string][] = [
      ['not json', 'plan: the response is not valid JSON'],
      [JSON.stringify({ subtasks: [] }), 'subtasks: must contain at least 1 subtask'],
      [tooMany, 'subtasks: must contain at most 2 subtasks, got 3'],
    ];
    for (const [answer, expected] of cases) {
      const out = await createPlanner({ llm: scripted(answer, answer), maxSubtasks: 2 }).plan('g', [coder]);
      expect(out.ok ? 'ok' : out.reason).toContain(expected);
    }
  });

  it('fails clearly without calling the model when no role is live', async () => {
    const llm = scripted();
    const out = await createPlanner({ llm }).plan('goal', []);
    expect(out).toEqual({ ok: false, reason: expect.stringMatching(/^no_live_roles: /), tokens: 0 });
    expect(llm.requests).toHaveLength(0);
  });

  it('leaves out a role whose published schema does not compile', async () => {
    const broken: RoleInfo = {
      ...coder,
      role: 'broken',
      inputSchema: { type: 'object', properties: { a: { type: 42 } } },
    };
    const llm = scripted(JSON.stringify({ subtasks: [{ role: 'researcher', input: { question: 'q' } }] }));
    const out = await createPlanner({ llm }).plan('goal', [broken, researcher]);
    expect(out.ok).toBe(true);
    const offered = JSON.stringify(llm.requests[0]?.responseFormat?.schema);
    expect(offered).not.toContain('"broken"');
  });
});

describe('plans with dependencies', () => {
  const plan = (...subtasks: unknown[]) => JSON.stringify({ subtasks });

  it('keeps dependsOn, once per id and without the subtask itself, and offers it in the response schema', async () => {
    const llm = scripted(
      plan(
        // What small models write: a subtask naming itself, which asks for nothing.
        { role: 'researcher', input: { question: 'the formula' }, dependsOn: ['s1'] },
        { role: 'coder', input: { task: 'compute with it' }, dependsOn: ['s1', 's1'] },
      ),
    );
    const out = await createPlanner({ llm }).plan('goal', [researcher, coder]);
    expect(out).toMatchObject({
      ok: true,
      subtasks: [
        { subtaskId: 's1', role: 'researcher' },
        { subtaskId: 's2', role: 'coder', dependsOn: ['s1'] },
      ],
    });
    if (out.ok) expect(out.subtasks[0]).not.toHaveProperty('dependsOn');
    expect(JSON.stringify(llm.requests[0]?.responseFormat?.schema)).toContain('"dependsOn"');
  });

  it('names the field of a dependency on an unknown subtask or of the wrong shape', async () => {
    const bad = plan(
      { role: 'researcher', input: { question: 'a' }, dependsOn: ['s9'] },
      { role: 'researcher', input: { question: 'b' }, dependsOn: ['s2'] },
      { role: 'researcher', input: { question: 'c' }, dependsOn: 's1' },
    );
    const out = await createPlanner({ llm: scripted(bad, bad) }).plan('goal', [researcher]);
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.reason).toContain('subtasks.0.dependsOn.0: "s9" is not a subtask of this plan (s1, s2, s3)');
      expect(out.reason).not.toContain('subtasks.1.dependsOn');
      expect(out.reason).toContain('subtasks.2.dependsOn: must be an array of subtask ids');
    }
  });

  it('rejects a cycle, spelling it out, and repairs it once', async () => {
    const cyclic = plan(
      { role: 'researcher', input: { question: 'a' } },
      { role: 'researcher', input: { question: 'b' }, dependsOn: ['s3'] },
      { role: 'researcher', input: { question: 'c' }, dependsOn: ['s2'] },
    );
    const fixed = plan(
      { role: 'researcher', input: { question: 'a' } },
      { role: 'researcher', input: { question: 'b' }, dependsOn: ['s1'] },
    );
    const llm = scripted(cyclic, fixed);
    const out = await createPlanner({ llm }).plan('goal', [researcher]);
    expect(out).toMatchObject({ ok: true, repaired: true });
    expect(llm.requests[1]?.messages[0]?.content).toContain('dependsOn forms a cycle (s2 -> s3 -> s2)');
  });
});
