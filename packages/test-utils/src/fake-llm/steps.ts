/** What a fake vendor does with one chat request. Builders are in `fakeReply`. */
export type FakeStep =
  | { kind: 'text'; text: string; usage?: FakeUsage; repeat?: boolean }
  /** `name` is the wire name (vendors only allow [a-zA-Z0-9_-]: flotilla's `memory.search` goes out as `memory_search`). */
  | {
      kind: 'toolCall';
      name: string;
      arguments: unknown;
      /** OpenAI only: send this exact `arguments` string (e.g. broken JSON) instead of JSON.stringify(arguments). */
      rawArguments?: string;
      usage?: FakeUsage;
      repeat?: boolean;
    }
  /** Structured output: OpenAI puts the JSON in `content`, Anthropic answers with the forced tool's `tool_use`. */
  | { kind: 'json'; value: unknown; usage?: FakeUsage; repeat?: boolean }
  | { kind: 'rateLimit'; retryAfter?: string; repeat?: boolean }
  | { kind: 'error'; status: number; message: string; repeat?: boolean }
  /** A 200 whose body is not JSON. */
  | { kind: 'malformed'; repeat?: boolean }
  /** Accepts the request and never answers: only the caller's deadline ends it. */
  | { kind: 'hang'; repeat?: boolean }
  /** Answers 200 and the start of a body, then stalls without ending it: only the caller's deadline ends it. */
  | { kind: 'stall'; repeat?: boolean };

export interface FakeUsage {
  prompt: number;
  completion: number;
}

/** Step builders: `fake.script(fakeReply.rateLimit('2'), fakeReply.text('hi'))`. */
export const fakeReply = {
  text: (text: string, usage?: FakeUsage): FakeStep => ({ kind: 'text', text, usage }),
  toolCall: (name: string, args: unknown = {}, usage?: FakeUsage): FakeStep => ({
    kind: 'toolCall',
    name,
    arguments: args,
    usage,
  }),
  /** A runaway model: calls this tool on every request, forever (budget tests). */
  alwaysToolCall: (name: string, args: unknown = {}, usage?: FakeUsage): FakeStep => ({
    kind: 'toolCall',
    name,
    arguments: args,
    usage,
    repeat: true,
  }),
  /** OpenAI only: a tool call whose `arguments` string is sent verbatim (e.g. not JSON). */
  toolCallRaw: (name: string, rawArguments: string, usage?: FakeUsage): FakeStep => ({
    kind: 'toolCall',
    name,
    arguments: undefined,
    rawArguments,
    usage,
  }),
  json: (value: unknown, usage?: FakeUsage): FakeStep => ({ kind: 'json', value, usage }),
  /** 429 with `Retry-After: <retryAfter>` (delay-seconds or an HTTP date) when given. */
  rateLimit: (retryAfter?: string): FakeStep => ({ kind: 'rateLimit', retryAfter }),
  serverError: (status = 500, message = 'The server had an error while processing your request.'): FakeStep => ({
    kind: 'error',
    status,
    message,
  }),
  error: (status: number, message: string): FakeStep => ({ kind: 'error', status, message }),
  malformed: (): FakeStep => ({ kind: 'malformed' }),
  hang: (): FakeStep => ({ kind: 'hang' }),
  /** Every request from now on stalls mid-response (a model server that hangs while answering). */
  stallAlways: (): FakeStep => ({ kind: 'stall', repeat: true }),
  /** Makes any step sticky: it answers every request from then on. */
  forever: (step: FakeStep): FakeStep => ({ ...step, repeat: true }),
};
