import { z } from 'zod';
import { LlmBadResponseError, LlmUnusableOutputError } from './errors.js';
import { postJson, type RetryOptions } from './http.js';
import type { ProviderCall, ProviderChat } from './provider.js';
import { isStrictCompatible, objectRoot } from './schema.js';
import { toolNameCodec } from './tool-names.js';
import type { ChatRequest, ChatResponse, LlmToolCall } from './types.js';

/** Settings for OpenAI and every server that speaks its Chat Completions API (Ollama, vLLM, Docker Model Runner). */
export interface OpenAiSettings {
  provider: 'openai' | 'openai-compatible';
  model: string;
  /** Server root, with or without a trailing `/v1` (Docker Model Runner's `.../engines/v1` works as is). */
  baseUrl: string;
  /** Sent as a Bearer token when set; local servers usually need none. */
  apiKey: string | undefined;
  /** Default completion limit when a request names none. */
  maxTokens: number;
  retry: RetryOptions;
}

/** Joins an API path to a base URL that may or may not already end in /v1. */
export function apiUrl(baseUrl: string, path: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  return /\/v1$/.test(base) ? `${base}${path}` : `${base}/v1${path}`;
}

const ToolCallWire = z.object({
  id: z.string(),
  type: z.literal('function').optional(),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

const CompletionWire = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z.array(ToolCallWire).nullish(),
        }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }).partial().nullish(),
});

const finishReasons: Record<string, ChatResponse['finishReason']> = {
  stop: 'stop',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
  length: 'length',
  content_filter: 'content_filter',
};

/** OpenAI's error body: `{ error: { message, type, code } }`; some compatible servers send a bare string. */
function openAiErrorMessage(body: unknown): string | undefined {
  const err = (body as { error?: unknown } | null)?.error;
  if (typeof err === 'string') return err;
  const message = (err as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

/** Chat Completions over plain fetch; no streaming, since every caller wants the whole answer before acting. */
export function openAiChat(settings: OpenAiSettings): ProviderChat {
  const { provider } = settings;
  return async (request: ChatRequest, call: ProviderCall) => {
    const names = toolNameCodec((request.tools ?? []).map((t) => t.name));
    const body: Record<string, unknown> = {
      model: settings.model,
      messages: request.messages.map((m) => {
        switch (m.role) {
          case 'assistant':
            return m.toolCalls?.length
              ? {
                  role: 'assistant',
                  content: m.content || null,
                  tool_calls: m.toolCalls.map((c) => ({
                    id: c.id,
                    type: 'function',
                    function: { name: names.encode(c.name), arguments: JSON.stringify(c.arguments ?? {}) },
                  })),
                }
              : { role: 'assistant', content: m.content };
          case 'tool':
            return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
          default:
            return { role: m.role, content: m.content };
        }
      }),
      // OpenAI renamed the limit for its own models; compatible servers still read max_tokens.
      [provider === 'openai' ? 'max_completion_tokens' : 'max_tokens']: request.maxTokens ?? settings.maxTokens,
    };
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.tools?.length) {
      body.tools = request.tools.map((t) => ({
        type: 'function',
        function: {
          name: names.encode(t.name),
          description: t.description,
          parameters: objectRoot(t.parameters).schema,
        },
      }));
      if (request.toolChoice === 'none') body.tool_choice = 'none';
    }
    const format = request.responseFormat && objectRoot(request.responseFormat.schema);
    if (request.responseFormat && format) {
      body.response_format = {
        type: 'json_schema',
        json_schema: {
          name: request.responseFormat.name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64),
          schema: format.schema,
          strict: isStrictCompatible(format.schema),
        },
      };
    }

    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (settings.apiKey) headers.authorization = `Bearer ${settings.apiKey}`;
    const { json, attempts } = await postJson({
      provider,
      url: apiUrl(settings.baseUrl, '/chat/completions'),
      headers,
      body,
      signal: call.signal,
      deadline: call.deadline,
      secrets: settings.apiKey ? [settings.apiKey] : [],
      errorMessage: openAiErrorMessage,
      retry: settings.retry,
    });

    const parsed = CompletionWire.safeParse(json);
    if (!parsed.success) {
      throw new LlmBadResponseError(
        provider,
        `${provider} response has an unexpected shape: ${z.prettifyError(parsed.error)}`,
      );
    }
    const usage = {
      promptTokens: parsed.data.usage?.prompt_tokens ?? 0,
      completionTokens: parsed.data.usage?.completion_tokens ?? 0,
    };
    const choice = parsed.data.choices[0];
    if (!choice) throw new LlmBadResponseError(provider, `${provider} response has no choices`, { usage });
    const toolCalls: LlmToolCall[] = (choice.message.tool_calls ?? []).map((c) => {
      try {
        return { id: c.id, name: names.decode(c.function.name), arguments: JSON.parse(c.function.arguments || '{}') };
      } catch (err) {
        throw new LlmUnusableOutputError(
          provider,
          `${provider} tool call ${c.function.name} has arguments that are not JSON`,
          {
            cause: err,
            usage,
            hint: `The arguments of your call to ${names.decode(c.function.name)} were not a JSON object.`,
          },
        );
      }
    });
    let content = choice.message.content ?? choice.message.refusal ?? '';
    if (format?.wrapped && content) content = unwrapValue(provider, content, usage);
    const finish = finishReasons[choice.finish_reason ?? ''] ?? (toolCalls.length ? 'tool_calls' : 'stop');
    return { content, toolCalls, finishReason: finish, usage, attempts };
  };
}

function unwrapValue(provider: OpenAiSettings['provider'], content: string, usage: ChatResponse['usage']): string {
  try {
    return JSON.stringify((JSON.parse(content) as { value?: unknown }).value ?? null);
  } catch (err) {
    throw new LlmBadResponseError(provider, `${provider} structured output is not JSON`, { cause: err, usage });
  }
}
