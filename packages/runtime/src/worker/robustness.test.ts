// What real models do wrong, played by a local server speaking OpenAI's wire format (as llama.cpp's
// server does), through the real openai-compatible provider and the shared agent loop: each case
// must end in a bounded repair or a typed stop reason, never a thrown error or an endless loop.
import { type FakeVendor, fakeReply, startFakeOpenAI } from '@flotilla/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLlm } from '../llm/index.js';
import { testAgentContext } from '../testing/index.js';
import type { ToolOutcome } from '../tools/index.js';
import type { AgentContext, RunTools } from './define.js';
import { runToolLoop } from './loop.js';

/** llama.cpp's answer when the model writes a tool call in no format its parser knows. */
const UNPARSABLE = 'The model produced output that does not match the expected peg-native format';

let fake: FakeVendor;
let ctx: AgentContext | undefined;
let calls: { name: string; input: unknown }[];

/** One real tool, `lookup`, that counts its calls and answers with a long text. */
const tools: RunTools = {
  specs: () => [
    {
      name: 'lookup',
      description: 'Looks a word up',
      parameters: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] },
    },
  ],
  call: async (name, input): Promise<ToolOutcome> => {
    calls.push({ name, input });
    if (name !== 'lookup')
      return {
        ok: false,
        stopReason: 'policy_denied',
        code: 'unknown_tool',
        message: `no tool named "${name}"`,
        attempts: 0,
      };
    return {
      ok: true,
      output: { meaning: `meaning of ${(input as { word: string }).word} `.repeat(50) },
      attempts: 1,
      cached: false,
    };
  },
};

const run = (limits = {}) => {
  ctx?.budget.dispose();
  ctx = testAgentContext({
    llm: createLlm(
      { LLM_PROVIDER: 'openai-compatible', LLM_BASE_URL: `${fake.url}/v1`, LLM_MODEL: 'small', LLM_MAX_RETRIES: 3 },
      { retry: { sleep: async () => {} } },
    ),
    tools,
    limits,
  });
  return runToolLoop(ctx, { system: 'Answer.', user: 'What does "flotilla" mean?', finish: (answer) => answer });
};
const body = (i: number) =>
  fake.requests[i]?.body as { messages: { role: string; content: string | null }[]; tool_choice?: unknown };
const lastUserText = (i: number) =>
  body(i)
    .messages.filter((m) => m.role === 'user')
    .at(-1)?.content ?? '';

beforeEach(async () => {
  fake = await startFakeOpenAI();
  calls = [];
});
afterEach(async () => {
  ctx?.budget.dispose();
  await fake.close();
});

describe('the agent loop against a misbehaving model', () => {
  it('repairs a tool call the server could not parse with one more turn, not HTTP retries', async () => {
    fake.script(
      fakeReply.serverError(500, UNPARSABLE),
      fakeReply.toolCall('lookup', { word: 'flotilla' }),
      fakeReply.text('a small fleet'),
    );
    const result = await run();
    expect(result).toMatchObject({ stopReason: 'finish', output: 'a small fleet' });
    expect(fake.requests).toHaveLength(3);
    expect(lastUserText(1)).toMatch(/could not be read.*lookup/);
    expect(calls).toEqual([{ name: 'lookup', input: { word: 'flotilla' } }]);
  });

  it('stops with model_error when the model stays unparsable, after a bounded number of turns', async () => {
    fake.script(fakeReply.forever(fakeReply.serverError(500, UNPARSABLE)));
    const result = await run();
    expect(result).toMatchObject({ stopReason: 'model_error' });
    expect(result.stopReason !== 'finish' && result.error).toContain('does not match the expected');
    // The first turn and two repairs; none of them retried at the HTTP level.
    expect(fake.requests).toHaveLength(3);
  });

  it('repairs tool arguments that are not JSON, naming the tool', async () => {
    fake.script(
      fakeReply.toolCallRaw('lookup', '{word: flotilla'),
      fakeReply.toolCall('lookup', { word: 'flotilla' }),
      fakeReply.text('a fleet'),
    );
    const result = await run();
    expect(result).toMatchObject({ stopReason: 'finish', output: 'a fleet' });
    expect(lastUserText(1)).toContain('The arguments of your call to lookup were not a JSON object');
    expect(calls).toHaveLength(1);
  });

  it('answers an invented tool name with the tools that exist, and the model recovers', async () => {
    fake.script(
      fakeReply.toolCall('web_search', { q: 'flotilla' }),
      fakeReply.toolCall('lookup', { word: 'flotilla' }),
      fakeReply.text('a fleet'),
    );
    const result = await run();
    expect(result).toMatchObject({ stopReason: 'finish', output: 'a fleet' });
    const denial = body(1).messages.find((m) => m.role === 'tool')?.content ?? '';
    expect(denial).toContain('no tool named \\"web_search\\"; the tools are: lookup');
  });

  it('asks again after an empty answer, and stops with model_error if it stays empty', async () => {
    fake.script(fakeReply.text(''), fakeReply.text('a fleet'));
    expect(await run()).toMatchObject({ stopReason: 'finish', output: 'a fleet' });
    expect(lastUserText(1)).toMatch(/^Your reply was empty/);

    fake.script(fakeReply.forever(fakeReply.text('')));
    const again = await run();
    expect(again).toMatchObject({ stopReason: 'model_error', error: 'the model gave an empty answer' });
  });

  it('leaves old tool outputs out once when the context overflows, then goes on', async () => {
    fake.script(
      fakeReply.toolCall('lookup', { word: 'a' }),
      fakeReply.toolCall('lookup', { word: 'b' }),
      fakeReply.serverError(
        400,
        'request (9001 tokens) exceeds the available context size (8192 tokens), try increasing it',
      ),
      fakeReply.text('done'),
    );
    const result = await run();
    expect(result).toMatchObject({ stopReason: 'finish', output: 'done' });
    const before = body(2)
      .messages.filter((m) => m.role === 'tool')
      .map((m) => m.content ?? '');
    const after = body(3)
      .messages.filter((m) => m.role === 'tool')
      .map((m) => m.content ?? '');
    expect(before.every((c) => c.includes('meaning of'))).toBe(true);
    expect(after[0]).toMatch(/^\[earlier tool output left out/);
    expect(after[1]).toContain('meaning of b');
  });

  it('stops with model_error when the context overflows with nothing left to shorten', async () => {
    fake.script(
      fakeReply.forever(
        fakeReply.serverError(400, 'request (9001 tokens) exceeds the available context size (8192 tokens)'),
      ),
    );
    const result = await run();
    expect(result).toMatchObject({ stopReason: 'model_error' });
    expect(fake.requests).toHaveLength(1);
  });

  it('does not run a repeated identical call again, and then asks for the answer with tools off', async () => {
    fake.script(
      fakeReply.toolCall('lookup', { word: 'flotilla' }),
      fakeReply.toolCall('lookup', { word: 'flotilla' }),
      fakeReply.toolCall('lookup', { word: 'flotilla' }),
      fakeReply.text('a fleet'),
    );
    const result = await run();
    expect(result).toMatchObject({ stopReason: 'finish', output: 'a fleet' });
    expect(calls).toHaveLength(1);
    expect(body(2).messages.at(-1)?.content).toMatch(/^You already called lookup with these arguments/);
    expect(body(2).tool_choice).toBeUndefined();
    expect(body(3).tool_choice).toBe('none');
  });

  it('ends a model that calls tools forever on its budget, with the tool run once', async () => {
    fake.script(fakeReply.alwaysToolCall('lookup', { word: 'flotilla' }));
    expect(await run({ maxSteps: 6, maxToolCalls: 20 })).toMatchObject({ stopReason: 'max_steps' });
    expect(calls).toHaveLength(1);
    expect(fake.requests).toHaveLength(6);
    // The repeats it is not given still count as calls it made.
    expect(await run({ maxSteps: 20, maxToolCalls: 3 })).toMatchObject({ stopReason: 'max_tool_calls' });
    expect(ctx?.budget.usage().toolCalls).toBe(3);
    expect(calls).toHaveLength(2);
  });
});
