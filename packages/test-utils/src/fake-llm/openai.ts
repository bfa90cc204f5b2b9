import {
  approxTokens,
  type FakeHandler,
  type FakeOptions,
  type FakeVendor,
  fakeEmbedding,
  startFake,
} from './server.js';
import type { FakeStep } from './steps.js';

const errorTypes: Record<number, { type: string; code: string | null }> = {
  400: { type: 'invalid_request_error', code: null },
  401: { type: 'invalid_request_error', code: 'invalid_api_key' },
  404: { type: 'invalid_request_error', code: 'model_not_found' },
  429: { type: 'requests', code: 'rate_limit_exceeded' },
};

/**
 * A local server speaking OpenAI's Chat Completions wire format (POST /v1/chat/completions), plus
 * OpenAI embeddings (POST /v1/embeddings) and Ollama's native embeddings (POST /api/embed), since
 * Ollama serves both APIs on one port. Unscripted chat requests get the text "ok".
 */
export function startFakeOpenAI(handler?: FakeHandler, options?: FakeOptions): Promise<FakeVendor> {
  return startFake(
    {
      chatPath: '/v1/chat/completions',
      chat(step: FakeStep, req, res, send, seq) {
        const body = (req.body ?? {}) as { model?: string; messages?: unknown };
        const error = (status: number, message: string, headers?: Record<string, string>) =>
          send(
            res,
            status,
            {
              error: {
                message,
                type: errorTypes[status]?.type ?? 'server_error',
                param: null,
                code: errorTypes[status]?.code ?? null,
              },
            },
            headers,
          );
        switch (step.kind) {
          case 'hang':
            return;
          case 'stall':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.write('{"id": "chatcmpl-stall", "choices": [');
            return;
          case 'malformed':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{"id": "chatcmpl-broken", "choices": [');
            return;
          case 'rateLimit':
            return error(
              429,
              'Rate limit reached for requests. Please try again later.',
              step.retryAfter === undefined ? {} : { 'retry-after': step.retryAfter },
            );
          case 'error':
            return error(step.status, step.message);
        }
        const message =
          step.kind === 'toolCall'
            ? {
                role: 'assistant',
                content: null,
                tool_calls: [
                  {
                    id: `call_fake_${seq}`,
                    type: 'function',
                    function: { name: step.name, arguments: step.rawArguments ?? JSON.stringify(step.arguments) },
                  },
                ],
                refusal: null,
              }
            : {
                role: 'assistant',
                content: step.kind === 'json' ? JSON.stringify(step.value) : step.text,
                refusal: null,
              };
        const prompt = step.usage?.prompt ?? approxTokens(body.messages);
        const completion = step.usage?.completion ?? approxTokens(message);
        send(res, 200, {
          id: `chatcmpl-fake-${seq}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: body.model ?? 'fake-model',
          system_fingerprint: null,
          choices: [
            { index: 0, message, logprobs: null, finish_reason: step.kind === 'toolCall' ? 'tool_calls' : 'stop' },
          ],
          usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
        });
      },
      other(req, res, send) {
        const body = (req.body ?? {}) as { model?: string; input?: string | string[] };
        const inputs = Array.isArray(body.input) ? body.input : [body.input ?? ''];
        if (req.method === 'POST' && req.path === '/v1/embeddings') {
          const tokens = inputs.reduce((n, t) => n + approxTokens(t), 0);
          send(res, 200, {
            object: 'list',
            data: inputs.map((t, index) => ({ object: 'embedding', index, embedding: fakeEmbedding(t) })),
            model: body.model ?? 'fake-embedding',
            usage: { prompt_tokens: tokens, total_tokens: tokens },
          });
          return true;
        }
        if (req.method === 'POST' && req.path === '/api/embed') {
          send(res, 200, {
            model: body.model ?? 'fake-embedding',
            embeddings: inputs.map((t) => fakeEmbedding(t)),
            total_duration: 1000,
            load_duration: 100,
            prompt_eval_count: inputs.reduce((n, t) => n + approxTokens(t), 0),
          });
          return true;
        }
        return false;
      },
    },
    handler,
    options,
  );
}
