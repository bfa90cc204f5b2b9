import { approxTokens, type FakeHandler, type FakeOptions, type FakeVendor, startFake } from './server.js';
import type { FakeStep } from './steps.js';

const errorTypes: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/**
 * A local server speaking Anthropic's Messages wire format (POST /v1/messages): `content` blocks,
 * `stop_reason`, `usage.input_tokens/output_tokens`, and `{ type: 'error', error: { type, message } }`
 * bodies. A `json` step answers with a `tool_use` of the tool named by the request's `tool_choice`,
 * which is how structured output works there. Unscripted requests get the text "ok".
 */
export function startFakeAnthropic(handler?: FakeHandler, options?: FakeOptions): Promise<FakeVendor> {
  return startFake(
    {
      chatPath: '/v1/messages',
      chat(step: FakeStep, req, res, send, seq) {
        const body = (req.body ?? {}) as {
          model?: string;
          messages?: unknown;
          system?: unknown;
          tool_choice?: { name?: string };
        };
        const error = (status: number, message: string, headers?: Record<string, string>) =>
          send(res, status, { type: 'error', error: { type: errorTypes[status] ?? 'api_error', message } }, headers);
        switch (step.kind) {
          case 'hang':
            return;
          case 'stall':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.write('{"id": "msg_stall", "content": [');
            return;
          case 'malformed':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{"id": "msg_broken", "content": [');
            return;
          case 'rateLimit':
            return error(
              429,
              'Number of request tokens has exceeded your per-minute rate limit',
              step.retryAfter === undefined ? {} : { 'retry-after': step.retryAfter },
            );
          case 'error':
            return error(step.status, step.message);
        }
        const content =
          step.kind === 'text'
            ? [{ type: 'text', text: step.text }]
            : step.kind === 'toolCall'
              ? [{ type: 'tool_use', id: `toolu_fake_${seq}`, name: step.name, input: step.arguments }]
              : [
                  {
                    type: 'tool_use',
                    id: `toolu_fake_${seq}`,
                    name: body.tool_choice?.name ?? 'json',
                    input: step.value,
                  },
                ];
        send(res, 200, {
          id: `msg_fake_${seq}`,
          type: 'message',
          role: 'assistant',
          model: body.model ?? 'fake-model',
          content,
          stop_reason: step.kind === 'text' ? 'end_turn' : 'tool_use',
          stop_sequence: null,
          usage: {
            input_tokens: step.usage?.prompt ?? approxTokens([body.system, body.messages]),
            output_tokens: step.usage?.completion ?? approxTokens(content),
          },
        });
      },
    },
    handler,
    options,
  );
}
