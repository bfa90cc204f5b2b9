import { createHash } from 'node:crypto';
import { instanceOf, MISSING } from './json-instance.js';
import type { ProviderChat } from './provider.js';
import type { ChatMessage, ChatRequest, ChatResponse, LlmToolCall, LlmToolSpec } from './types.js';
import { untrustedBody } from './untrusted.js';

type Schema = Record<string, unknown>;

/** Model name the offline provider reports. */
export const OFFLINE_MODEL = 'offline-demo';

const CODE_WORDS = /\b(code|script|function|program|compute|calculate)\b/i;
const DEFAULT_MAX_SUBTASKS = 8;
const SUMMARY_ITEM_CHARS = 300;

const tokens = (chars: number) => Math.ceil(chars / 4);

function lastUser(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role === 'user') return m.content;
  }
  return '';
}

/**
 * Splits a goal into clauses: lines (numbered or bulleted items lose their marker), `;`, and " and then ".
 * More clauses than `max` are folded into the last one so nothing the user asked is dropped.
 */
export function splitClauses(goal: string, max = DEFAULT_MAX_SUBTASKS): string[] {
  const parts = goal
    .split(/\n|;|\s+and then\s+/i)
    .map((p) =>
      p
        .trim()
        .replace(/^(?:\d+[.)]|[-*•])\s+/, '')
        .trim(),
    )
    .filter(Boolean);
  if (parts.length === 0) return [goal.trim() || goal];
  if (parts.length <= max) return parts;
  return [...parts.slice(0, max - 1), parts.slice(max - 1).join('; ')];
}

interface Branch {
  role: string;
  input: Schema;
}

function planBranches(schema: Schema): { branches: Branch[]; max: number } {
  const subtasks = (schema.properties as Record<string, Schema> | undefined)?.subtasks ?? {};
  const items = (subtasks.items as Schema | undefined) ?? {};
  const options = (items.anyOf ?? items.oneOf ?? [items]) as Schema[];
  const branches = options.flatMap((b) => {
    const props = (b.properties as Record<string, Schema> | undefined) ?? {};
    const role = props.role?.const ?? (props.role?.enum as unknown[] | undefined)?.[0];
    return typeof role === 'string' ? [{ role, input: props.input ?? {} }] : [];
  });
  const max = typeof subtasks.maxItems === 'number' ? subtasks.maxItems : DEFAULT_MAX_SUBTASKS;
  return { branches, max };
}

/** Code-ish clauses go to the coder when one is offered; the rest to the first other role. */
function chooseBranch(clause: string, branches: Branch[]): Branch | undefined {
  const coder = branches.find((b) => b.role === 'coder');
  const other = branches.find((b) => b.role !== 'coder');
  if (CODE_WORDS.test(clause) && coder) return coder;
  return other ?? coder;
}

function plan(schema: Schema, goal: string): unknown {
  const { branches, max } = planBranches(schema);
  if (branches.length === 0) return { subtasks: [] };
  const subtasks = splitClauses(goal, max).flatMap((clause) => {
    const branch = chooseBranch(clause, branches);
    if (!branch) return [];
    const input = instanceOf(branch.input, { text: clause });
    return input === MISSING ? [] : [{ role: branch.role, input }];
  });
  return { subtasks };
}

function callId(name: string, index: number, seed: string): string {
  return `call_offline_${index}_${createHash('sha256').update(`${name}\n${seed}`).digest('hex').slice(0, 12)}`;
}

/** The next tool this conversation has not called yet and whose required args the text can fill. */
function nextToolCall(tools: LlmToolSpec[], messages: ChatMessage[], text: string): LlmToolCall | undefined {
  const called = new Set(
    messages.flatMap((m) => (m.role === 'assistant' ? (m.toolCalls ?? []).map((c) => c.name) : [])),
  );
  for (const tool of tools) {
    if (called.has(tool.name)) continue;
    const args = instanceOf(tool.parameters, { text, strict: true });
    if (args === MISSING) continue;
    return { id: callId(tool.name, called.size, text), name: tool.name, arguments: args };
  }
  return undefined;
}

function clip(s: string, n = SUMMARY_ITEM_CHARS): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

/** Text answer after tools: the request, then one line per observation. */
function summariseObservations(text: string, messages: ChatMessage[]): string {
  const seen = messages.flatMap((m) => (m.role === 'tool' ? [`- ${m.name}: ${clip(untrustedBody(m.content))}`] : []));
  return [`Offline demo answer for: ${clip(text, 500)}`, '', 'Tool observations:', ...seen].join('\n');
}

/** Text answer without tools: the first line of the request plus its bullet inputs (the aggregator's results). */
function summariseMessage(text: string): string {
  const lines = text.split('\n').map((l) => l.trim());
  const head = lines.find((l) => l && !/^[-*•]\s/.test(l)) ?? '';
  const bullets = lines.filter((l) => /^[-*•]\s/.test(l)).map((l) => `- ${clip(l.replace(/^[-*•]\s+/, ''))}`);
  const title = head.replace(/^(goal|task|question)\s*:\s*/i, '');
  if (bullets.length === 0) return `Offline demo answer: ${clip(text, 1000)}`;
  return [
    `Offline demo answer for: ${clip(title, 500)}`,
    '',
    `Summary of ${bullets.length} input(s):`,
    ...bullets,
  ].join('\n');
}

function respond(request: ChatRequest): Omit<ChatResponse, 'usage' | 'attempts'> {
  const text = lastUser(request.messages);
  const format = request.responseFormat;
  if (format) {
    const value = format.name === 'plan' ? plan(format.schema, text) : instanceOf(format.schema, { text });
    return { content: JSON.stringify(value === MISSING ? null : value), toolCalls: [], finishReason: 'stop' };
  }
  if (request.tools?.length) {
    const call = request.toolChoice === 'none' ? undefined : nextToolCall(request.tools, request.messages, text);
    if (call) return { content: '', toolCalls: [call], finishReason: 'tool_calls' };
    return { content: summariseObservations(text, request.messages), toolCalls: [], finishReason: 'stop' };
  }
  return { content: summariseMessage(text), toolCalls: [], finishReason: 'stop' };
}

/**
 * The offline provider: a DEMO AND TEST MODEL, NOT AI. Deterministic (same request, same answer),
 * no network, no key. It exists so the whole system runs end to end on a laptop or in CI:
 *
 * - `responseFormat.name === 'plan'`: splits the goal (the last user message) into clauses and
 *   makes one subtask per clause, choosing the `coder` branch for code-ish clauses (code, script,
 *   function, program, compute, calculate) and the first other role otherwise; each input is a
 *   generic instance of that role's input schema seeded with the clause.
 * - any other `responseFormat`: a generic instance of the schema seeded with the user text.
 * - tools offered: calls each tool at most once, one per turn, in the order offered, skipping
 *   tools whose required arguments it cannot fill honestly (a `url` with no URL in the text);
 *   then answers in text, summarising the tool observations.
 * - no tools: a text answer summarising the user message and its bullet items.
 *
 * Usage is estimated at one token per four characters, prompt and completion.
 */
export function offlineChat(): ProviderChat {
  return async (request, call) => {
    if (call.signal?.aborted) throw call.signal.reason;
    const out = respond(request);
    const promptChars =
      request.messages.reduce((n, m) => n + m.content.length, 0) + JSON.stringify(request.tools ?? []).length;
    const completionChars = out.content.length + JSON.stringify(out.toolCalls).length - 2;
    return {
      ...out,
      usage: { promptTokens: tokens(promptChars), completionTokens: tokens(completionChars) },
      attempts: 1,
    };
  };
}
