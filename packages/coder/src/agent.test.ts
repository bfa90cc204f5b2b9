import type { ToolOutcome } from '@flotilla/runtime';
import { createLlm } from '@flotilla/runtime/llm';
import { testAgentContext } from '@flotilla/runtime/testing';
import type { AgentContext, RunTools } from '@flotilla/runtime/worker';
import { type FakeVendor, fakeReply, startFakeOpenAI } from '@flotilla/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { code } from './agent.js';
import { CoderInput } from './schemas.js';
import type { RunResult } from './tools/code-run.js';

/**
 * ctx.tools as the coder sees it, answering code.run with what the gateway would return. The
 * gateway itself (allowlist, idempotency in Redis, retries) is the runtime's and tested there; these
 * tests are about what the coder does with each outcome.
 */
function gatewayAnswering(outcome: ToolOutcome) {
  const calls: { name: string; input: unknown }[] = [];
  const tools: RunTools = {
    specs: () => [],
    call: async (name, input) => {
      calls.push({ name, input });
      return outcome;
    },
  };
  return { tools, calls };
}

const ran: RunResult = {
  exitCode: 0,
  stdout: '0 1 1 2 3 5 8 13 21 34\n',
  stderr: '',
  timedOut: false,
  memoryExceeded: false,
  outputTruncated: false,
  durationMs: 12,
};
const denied: ToolOutcome = {
  ok: false,
  stopReason: 'policy_denied',
  code: 'not_allowlisted',
  message: 'tool code.run is not allowlisted',
  attempts: 0,
};

let ctx: AgentContext | undefined;
let vendor: FakeVendor | undefined;
afterEach(async () => {
  ctx?.budget.dispose();
  await vendor?.close();
  ctx = vendor = undefined;
});

/** A model that answers its requests with `steps` in turn, through the real OpenAI-compatible client. */
async function modelScripted(...steps: Parameters<FakeVendor['script']>) {
  vendor = await startFakeOpenAI();
  vendor.script(...steps);
  return createLlm({ LLM_PROVIDER: 'openai-compatible', LLM_BASE_URL: vendor.url, LLM_MODEL: 'coder-test' });
}

/** A model that answers every request with `step`, through the real OpenAI-compatible client. */
function modelAnswering(step: Parameters<FakeVendor['script']>[0]) {
  return modelScripted(fakeReply.forever(step));
}

describe('the coder', () => {
  it('writes a program with the model, runs it through code.run and returns both', async () => {
    const { tools, calls } = gatewayAnswering({ ok: true, output: ran, attempts: 1, cached: false });
    ctx = testAgentContext({ role: 'coder', tools });
    const result = await code(CoderInput.parse({ task: 'print the first 10 Fibonacci numbers' }), ctx);

    expect(calls).toHaveLength(1);
    expect(calls[0]?.name).toBe('code.run');
    const draft = calls[0]?.input as { language: string; code: string };
    expect(draft.language).toBe('javascript');
    // The offline model's program prints its task: proof the task reached the model.
    expect(draft.code).toContain('Fibonacci');
    expect(result).toEqual({ stopReason: 'finish', output: { ...draft, run: ran } });
    expect(ctx.budget.usage()).toMatchObject({ steps: 1 });
    expect(ctx.budget.usage().tokens).toBeGreaterThan(0);
  });

  it('tells the model the task and the language, and asks for a JSON draft', async () => {
    const { tools, calls } = gatewayAnswering({ ok: true, output: ran, attempts: 1, cached: false });
    const llm = await modelAnswering(fakeReply.json({ language: 'python', code: 'print("hi")' }));
    ctx = testAgentContext({ role: 'coder', tools, llm });
    const result = await code(CoderInput.parse({ task: 'say hi', language: 'python' }), ctx);

    const body = vendor?.requests[0]?.body as {
      messages: { role: string; content: string }[];
      response_format?: { type: string };
    };
    expect(body.messages.at(-1)).toEqual({ role: 'user', content: 'Task: say hi\nLanguage: python' });
    expect(body.response_format?.type).toBe('json_schema');
    expect(calls[0]?.input).toEqual({ language: 'python', code: 'print("hi")' });
    expect(result).toMatchObject({ stopReason: 'finish', output: { language: 'python', run: ran } });
  });

  it('ends with the refusal and the unexecuted draft when code.run is denied', async () => {
    const { tools, calls } = gatewayAnswering(denied);
    ctx = testAgentContext({ role: 'coder', tools });
    const result = await code(CoderInput.parse({ task: 'compute 2+2' }), ctx);
    expect(calls).toHaveLength(1);
    expect(result).toEqual({
      stopReason: 'policy_denied',
      output: calls[0]?.input,
      error: 'tool code.run is not allowlisted',
    });
  });

  it.each([
    ['text that is not JSON', fakeReply.text('Sure! Here is some code: console.log(1)')],
    ['JSON in a language it cannot run', fakeReply.json({ language: 'cobol', code: 'DISPLAY 1.' })],
    ['JSON without code', fakeReply.json({ language: 'javascript', code: '' })],
  ])('asks once more, then ends with model_error and runs nothing when the model replies with %s', async (_, step) => {
    const { tools, calls } = gatewayAnswering(denied);
    ctx = testAgentContext({ role: 'coder', tools, llm: await modelAnswering(step) });
    const result = await code(CoderInput.parse({ task: 'compute 2+2' }), ctx);
    expect(result).toMatchObject({ stopReason: 'model_error', error: expect.stringMatching(/no usable code/) });
    expect(calls).toHaveLength(0);
    expect(vendor?.requests).toHaveLength(2);
  });

  it('runs the repaired draft when the second reply is usable code', async () => {
    const { tools, calls } = gatewayAnswering({ ok: true, output: ran, attempts: 1, cached: false });
    const llm = await modelScripted(
      fakeReply.text('Sure! console.log(1)'),
      fakeReply.json({ language: 'javascript', code: 'console.log(1)' }),
    );
    ctx = testAgentContext({ role: 'coder', tools, llm });
    const result = await code(CoderInput.parse({ task: 'compute 2+2' }), ctx);
    expect(result).toMatchObject({ stopReason: 'finish', output: { code: 'console.log(1)', run: ran } });
    expect(calls).toHaveLength(1);
  });

  it('shows a failing program its stderr once, as data, and returns the fixed run', async () => {
    const failed: RunResult = { ...ran, exitCode: 1, stdout: '', stderr: 'ReferenceError: x is not defined' };
    const outcomes = [failed, ran];
    const calls: unknown[] = [];
    const tools: RunTools = {
      specs: () => [],
      call: async (_name, input) => {
        calls.push(input);
        return { ok: true, output: outcomes.shift(), attempts: 1, cached: false };
      },
    };
    const llm = await modelScripted(
      fakeReply.json({ language: 'javascript', code: 'console.log(x)' }),
      fakeReply.json({ language: 'javascript', code: 'console.log(1)' }),
    );
    ctx = testAgentContext({ role: 'coder', tools, llm });
    const result = await code(CoderInput.parse({ task: 'compute 2+2' }), ctx);
    expect(result).toMatchObject({ stopReason: 'finish', output: { code: 'console.log(1)', run: ran } });
    expect(calls).toHaveLength(2);
    const body = vendor?.requests[1]?.body as { messages: { content: string }[] } | undefined;
    const fix = body?.messages.at(-1)?.content ?? '';
    expect(fix).toContain('exited with code 1');
    expect(fix).toContain('<untrusted-data source="tool:code.run">');
    expect(fix).toContain('ReferenceError: x is not defined');
  });

  it('returns a program that still fails after its one fix as it ran, without a third draft', async () => {
    const failed: RunResult = { ...ran, exitCode: 2, stdout: '', stderr: 'boom' };
    const { tools, calls } = gatewayAnswering({ ok: true, output: failed, attempts: 1, cached: false });
    ctx = testAgentContext({
      role: 'coder',
      tools,
      llm: await modelAnswering(fakeReply.json({ language: 'javascript', code: 'process.exit(2)' })),
    });
    const result = await code(CoderInput.parse({ task: 'compute 2+2' }), ctx);
    expect(result).toMatchObject({ stopReason: 'finish', output: { run: failed } });
    expect(calls).toHaveLength(2);
    expect(vendor?.requests).toHaveLength(2);
  });

  it('asks the model nothing once no step is left', async () => {
    const { tools, calls } = gatewayAnswering(denied);
    const llm = await modelAnswering(fakeReply.json({ language: 'javascript', code: 'console.log(1)' }));
    ctx = testAgentContext({ role: 'coder', tools, llm, limits: { maxSteps: 1 } });
    ctx.budget.chargeStep(); // an earlier step used the only one
    const result = await code(CoderInput.parse({ task: 'compute 2+2' }), ctx);
    expect(result).toEqual({ stopReason: 'max_steps' });
    expect(vendor?.requests).toHaveLength(0);
    expect(calls).toHaveLength(0);
  });

  it('runs nothing when the reply used up the token budget', async () => {
    const { tools, calls } = gatewayAnswering({ ok: true, output: ran, attempts: 1, cached: false });
    ctx = testAgentContext({ role: 'coder', tools, limits: { maxTokens: 10 } });
    const result = await code(CoderInput.parse({ task: 'compute 2+2' }), ctx);
    expect(result).toEqual({ stopReason: 'max_tokens' });
    expect(calls).toHaveLength(0);
  });
});
