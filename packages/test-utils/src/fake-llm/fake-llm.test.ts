// The fakes are loopback HTTP servers; these checks pin the wire details provider tests rely on.
import { describe, expect, it } from 'vitest';
import { fakeReply, startFakeAnthropic, startFakeOpenAI } from './index.js';

const post = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });

describe('fake vendors', () => {
  it('openai: scripted steps in order, then the default text, recording each request', async () => {
    const fake = await startFakeOpenAI();
    try {
      fake.script(fakeReply.toolCall('lookup', { q: 1 }), fakeReply.rateLimit('3'));
      const first = (await (await post(`${fake.url}/v1/chat/completions`, { model: 'm', messages: [] })).json()) as {
        object: string;
        choices: { message: { tool_calls: { function: { arguments: string } }[] }; finish_reason: string }[];
      };
      expect(first.object).toBe('chat.completion');
      expect(first.choices[0]?.finish_reason).toBe('tool_calls');
      expect(first.choices[0]?.message.tool_calls[0]?.function.arguments).toBe('{"q":1}');
      const limited = await post(`${fake.url}/v1/chat/completions`, { model: 'm', messages: [] });
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('3');
      expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
      const third = (await (await post(`${fake.url}/v1/chat/completions`, { messages: [] })).json()) as {
        choices: { message: { content: string } }[];
      };
      expect(third.choices[0]?.message.content).toBe('ok');
      expect(fake.requests).toHaveLength(3);
    } finally {
      await fake.close();
    }
  });

  it('anthropic: error bodies in the Messages format', async () => {
    const fake = await startFakeAnthropic();
    try {
      fake.script(fakeReply.serverError(529, 'Overloaded'));
      const res = await post(`${fake.url}/v1/messages`, { model: 'm', messages: [] });
      expect(res.status).toBe(529);
      expect(await res.json()).toEqual({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    } finally {
      await fake.close();
    }
  });

  it('options: a delayed answer still arrives whole; keepRequests: false records nothing', async () => {
    const fake = await startFakeOpenAI(undefined, { delayMs: 20, keepRequests: false });
    try {
      const res = (await (await post(`${fake.url}/v1/chat/completions`, { messages: [] })).json()) as {
        choices: { message: { content: string } }[];
      };
      expect(res.choices[0]?.message.content).toBe('ok');
      expect(fake.requests).toHaveLength(0);
    } finally {
      await fake.close();
    }
  });

  it('close() returns even while a hanging request is in flight', async () => {
    const fake = await startFakeOpenAI();
    fake.script(fakeReply.hang());
    const pending = post(`${fake.url}/v1/chat/completions`, { messages: [] }).then(
      () => 'answered',
      () => 'dropped',
    );
    await new Promise<void>((resolve) => {
      const tick = () => (fake.requests.length ? resolve() : setTimeout(tick, 5));
      tick();
    });
    await fake.close();
    expect(await pending).toBe('dropped');
  });
});
