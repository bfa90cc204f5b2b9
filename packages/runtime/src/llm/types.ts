import type { Budget } from '../budget/index.js';

/** A tool call the model asked for; `arguments` is already parsed JSON. */
export interface LlmToolCall {
  id: string;
  name: string;
  arguments: unknown;
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: LlmToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

/** A tool offered to the model; `parameters` is a JSON Schema object (z.toJSONSchema of the tool's input). */
export interface LlmToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

export interface ChatRequest {
  messages: ChatMessage[];
  tools?: LlmToolSpec[];
  /**
   * 'none': the tools stay described (the conversation refers to them) but the model must answer in
   * text. The agent loop uses it to end a model's loop of repeated calls. Default: the model chooses.
   */
  toolChoice?: 'auto' | 'none';
  /**
   * Ask for JSON matching `schema` (OpenAI json_schema / Anthropic forced tool). `name` says what the JSON is
   * for (the planner uses 'plan'); the offline model keys its behaviour on it.
   */
  responseFormat?: { name: string; schema: Record<string, unknown> };
  maxTokens?: number;
  temperature?: number;
}

export interface ChatResponse {
  /** Text content; for a responseFormat request, the JSON text. */
  content: string;
  toolCalls: LlmToolCall[];
  finishReason: 'stop' | 'tool_calls' | 'length' | 'content_filter';
  usage: { promptTokens: number; completionTokens: number };
  /** Provider-side attempts this call took (429/5xx retries included). */
  attempts: number;
}

export interface ChatOptions {
  /** Aborts the HTTP request; pass the budget's signal so the deadline cancels in-flight I/O. */
  signal?: AbortSignal;
  /** When given, tokens (and retried attempts) are charged to it, and its signal aborts the call. */
  budget?: Budget;
  /**
   * Epoch ms after which no retry is started (the run's deadline). Without it, a retry wait is
   * still cut short by `signal`, just later than it could have been.
   */
  deadline?: number;
}

/** One interface over every provider: Anthropic, OpenAI, OpenAI-compatible, and the offline demo model. */
export interface LlmClient {
  readonly provider: 'anthropic' | 'openai' | 'openai-compatible' | 'offline';
  readonly model: string;
  chat(request: ChatRequest, options?: ChatOptions): Promise<ChatResponse>;
}
