import { z } from 'zod';
import { LlmBadResponseError } from './errors.js';
import { postJson, type RetryOptions } from './http.js';
import { apiUrl } from './openai.js';
import type { ProviderCall, ProviderChat } from './provider.js';
import { objectRoot } from './schema.js';
import { toolNameCodec } from './tool-names.js';
import type { ChatMessage, ChatRequest, ChatResponse, LlmToolCall } from './types.js';

/** Settings for Anthropic's Messages API. */
export interface AnthropicSettings {
  model: string;
  /** Default https://api.anthropic.com. */
  baseUrl: string;
  apiKey: string;
  /** The Messages API requires max_tokens on every request; used when a request names none. */
  maxTokens: number;
  retry: RetryOptions;
}

/** The API version this wire format was written against (tool_use/tool_result blocks). */
const ANTHROPIC_VERSION = '2023-06-01';

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string };

interface WireMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

const ResponseWire = z.object({
  content: z.array(
    z.union([
      z.object({ type: z.literal('text'), text: z.string() }),
      z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.unknown() }),
      z.object({ type: z.string() }),
    ]),
  ),
  stop_reason: z.string().nullish(),
  usage: z.object({ input_tokens: z.number(), output_tokens: z.number() }).partial().nullish(),
});

const finishReasons: Record<string, ChatResponse['finishReason']> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  tool_use: 'tool_calls',
  max_tokens: 'length',
  refusal: 'content_filter',
};

/** Anthropic's error body: `{ type: 'error', error: { type, message } }`. */
function anthropicErrorMessage(body: unknown): string | undefined {
  const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof message === 'string' ? message : undefined;
}

/**
 * The Messages API wants the system prompt apart, strictly alternating user/assistant turns, and
 * every tool result of a turn inside ONE user message; our flat message list is folded into that.
 */
function toWire(
  messages: ChatMessage[],
  encode: (name: string) => string,
): { system: string; messages: WireMessage[] } {
  const system: string[] = [];
  const out: WireMessage[] = [];
  const push = (role: WireMessage['role'], blocks: Block[]) => {
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of messages) {
    switch (m.role) {
      case 'system':
        system.push(m.content);
        break;
      case 'user':
        // The API rejects empty text blocks.
        if (m.content) push('user', [{ type: 'text', text: m.content }]);
        break;
      case 'assistant': {
        const blocks: Block[] = m.content ? [{ type: 'text', text: m.content }] : [];
        for (const c of m.toolCalls ?? [])
          blocks.push({ type: 'tool_use', id: c.id, name: encode(c.name), input: c.arguments ?? {} });
        if (blocks.length) push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content }]);
        break;
    }
  }
  return { system: system.join('\n\n'), messages: out };
}

/**
 * Anthropic Messages over plain fetch, no streaming. Structured output is a forced tool call:
 * the schema becomes the only tool's input_schema and tool_choice names it.
 */
export function anthropicChat(settings: AnthropicSettings): ProviderChat {
  const provider = 'anthropic';
  return async (request: ChatRequest, call: ProviderCall) => {
    const format = request.responseFormat;
    const formatTool = format ? format.name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64) || 'respond' : undefined;
    const names = toolNameCodec((request.tools ?? []).map((t) => t.name));
    const wire = toWire(request.messages, names.encode);
    const root = format && objectRoot(format.schema);

    const body: Record<string, unknown> = {
      model: settings.model,
      max_tokens: request.maxTokens ?? settings.maxTokens,
      messages: wire.messages,
    };
    if (wire.system) body.system = wire.system;
    if (request.temperature !== undefined) body.temperature = request.temperature;
    const tools: unknown[] = (request.tools ?? []).map((t) => ({
      name: names.encode(t.name),
      description: t.description,
      input_schema: objectRoot(t.parameters).schema,
    }));
    if (format && root && formatTool) {
      tools.push({
        name: formatTool,
        description: `Respond with the ${format.name} as this tool's input.`,
        input_schema: root.schema,
      });
      body.tool_choice = { type: 'tool', name: formatTool };
    } else if (request.toolChoice === 'none' && tools.length) {
      body.tool_choice = { type: 'none' };
    }
    if (tools.length) body.tools = tools;

    const { json, attempts } = await postJson({
      provider,
      url: apiUrl(settings.baseUrl, '/messages'),
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'x-api-key': settings.apiKey,
        'anthropic-version': ANTHROPIC_VERSION,
      },
      body,
      signal: call.signal,
      deadline: call.deadline,
      secrets: [settings.apiKey],
      errorMessage: anthropicErrorMessage,
      retry: settings.retry,
    });

    const parsed = ResponseWire.safeParse(json);
    if (!parsed.success) {
      throw new LlmBadResponseError(
        provider,
        `anthropic response has an unexpected shape: ${z.prettifyError(parsed.error)}`,
      );
    }
    const usage = {
      promptTokens: parsed.data.usage?.input_tokens ?? 0,
      completionTokens: parsed.data.usage?.output_tokens ?? 0,
    };
    let text = '';
    const toolCalls: LlmToolCall[] = [];
    let structured: unknown;
    for (const block of parsed.data.content) {
      if ('text' in block && block.type === 'text') text += block.text;
      else if ('input' in block && block.type === 'tool_use') {
        if (formatTool && block.name === formatTool) structured = block.input;
        else toolCalls.push({ id: block.id, name: names.decode(block.name), arguments: block.input ?? {} });
      }
    }
    if (format) {
      if (structured === undefined) {
        throw new LlmBadResponseError(provider, `anthropic did not call the forced ${formatTool} tool`, { usage });
      }
      const value = root?.wrapped ? (structured as { value?: unknown } | null)?.value : structured;
      return { content: JSON.stringify(value ?? null), toolCalls: [], finishReason: 'stop', usage, attempts };
    }
    const finish = finishReasons[parsed.data.stop_reason ?? ''] ?? (toolCalls.length ? 'tool_calls' : 'stop');
    return { content: text, toolCalls, finishReason: finish, usage, attempts };
  };
}
