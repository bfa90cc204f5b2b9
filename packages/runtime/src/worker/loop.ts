import type { StopReason } from '@flotilla/contracts';
import { LlmContextOverflowError, LlmUnusableOutputError } from '../llm/errors.js';
import type { ChatMessage, ChatResponse, LlmToolCall } from '../llm/index.js';
import { renderUntrusted, UNTRUSTED_DATA_RULE } from '../llm/untrusted.js';
import { argsHash, type ToolOutcome } from '../tools/index.js';
import type { AgentContext, AgentResult } from './define.js';
import { dependencyContext } from './dependencies.js';

/** One tool call and what came of it, in call order. */
export interface Observation {
  call: LlmToolCall;
  outcome: ToolOutcome;
}

export interface ToolLoopOptions<O> {
  system: string;
  user: string;
  /**
   * Tool failures that end the run instead of being shown to the model. Budget stops always end it.
   * Default: kill_switch (an operator said stop).
   */
  fatal?: StopReason[];
  /** Builds the role's output from the model's final text and everything observed. */
  finish: (answer: string, observations: Observation[]) => O;
}

/** Observations shown to the model are capped: a huge page must not eat the token budget. */
const MAX_OBSERVATION_CHARS = 4_000;

/**
 * Turns a run may spend repairing what a model got wrong (a tool call nobody could parse, an empty
 * answer, a conversation past its context window) before it stops with `model_error`. Small models
 * often get it right on the second try; a third rarely helps and only burns the budget.
 */
const MAX_REPAIRS = 2;

/** Said in place of a tool output shortened to fit the context window. */
const ELIDED = '[earlier tool output left out to fit the model context; call the tool again if you need it]';

/**
 * The model -> tool call -> observation loop every agent role shares, bounded by the run's budget:
 * each model turn is a step, each tool call goes through the gateway (and its budget check), and
 * the first limit hit ends the run with that limit's stop reason. The outputs of the subtasks the
 * run depends on follow the user message, as untrusted data.
 *
 * Real models misbehave in known ways, and each ends in a bounded repair or a typed stop, never a
 * crash or an endless loop (docs/robustness.md): an unparsable tool call or an empty answer gets one
 * turn to fix it (MAX_REPAIRS in all), a context overflow drops old tool outputs once, a call to a
 * tool that does not exist is answered with the tools that do, and a call the model already made
 * with the same arguments is not run again: the model is pointed at the result it has, and if it
 * repeats itself anyway it is asked for its answer with no tools offered.
 */
export async function runToolLoop<O>(ctx: AgentContext, opts: ToolLoopOptions<O>): Promise<AgentResult<O>> {
  const fatal = new Set<StopReason>(opts.fatal ?? ['kill_switch']);
  const messages: ChatMessage[] = [
    // Every role gets the rule, so no agent can be written that reads tool text as instructions.
    { role: 'system', content: `${opts.system}\n\n${UNTRUSTED_DATA_RULE}` },
    { role: 'user', content: `${opts.user}${dependencyContext(ctx.envelope)}` },
  ];
  const observations: Observation[] = [];
  const tools = ctx.tools.specs();
  const toolNames = tools.map((t) => t.name).join(', ') || '(none)';
  /** Successful calls by tool and arguments, to answer a repeat without running it again. */
  const seen = new Map<string, number>();
  let repairs = 0;
  let repeated = false;
  let answerNow = false;

  const stopModel = (error: string): AgentResult<O> => ({
    stopReason: 'model_error',
    output: opts.finish('', observations),
    error,
  });

  for (;;) {
    const stepStop = ctx.budget.chargeStep();
    if (stepStop) return { stopReason: stepStop, output: opts.finish('', observations) };

    let reply: ChatResponse;
    try {
      reply = await ctx.llm.chat(
        { messages, tools, ...(answerNow ? { toolChoice: 'none' as const } : {}) },
        { signal: ctx.signal, budget: ctx.budget },
      );
    } catch (err) {
      if (ctx.budget.stopReason || !isRepairable(err)) throw err;
      if (repairs >= MAX_REPAIRS) return stopModel(err.message);
      repairs++;
      if (err instanceof LlmContextOverflowError) {
        if (!elideOldObservations(messages)) return stopModel(err.message);
      } else {
        messages.push({
          role: 'user',
          content: `${err.hint} Either call one of these tools with a JSON object of arguments: ${toolNames}; or, if you have what you need, reply with your answer as plain text.`,
        });
      }
      ctx.log.warn({ err: err.message, repair: repairs }, 'model reply unusable; asking for a repair');
      continue;
    }
    if (ctx.budget.stopReason)
      return { stopReason: ctx.budget.stopReason, output: opts.finish(reply.content, observations) };

    if (reply.toolCalls.length === 0) {
      if (reply.content.trim() || observations.some((o) => o.outcome.ok)) {
        return { stopReason: 'finish', output: opts.finish(reply.content, observations) };
      }
      // An empty reply before any result: nothing to answer with yet.
      if (repairs >= MAX_REPAIRS) return stopModel('the model gave an empty answer');
      repairs++;
      messages.push({ role: 'assistant', content: '' });
      messages.push({
        role: 'user',
        content: `Your reply was empty. Call one of these tools: ${toolNames}; or reply with your answer as plain text.`,
      });
      continue;
    }

    messages.push({ role: 'assistant', content: reply.content, toolCalls: reply.toolCalls });
    for (const call of reply.toolCalls) {
      const key = `${call.name}:${argsHash(call.arguments ?? {})}`;
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        // Running it again would give the model what it already has, and small models loop here.
        // It still counts as a call the model made, so a loop of repeats meets max_tool_calls.
        const stop = ctx.budget.chargeToolCall();
        if (stop) return { stopReason: stop, output: opts.finish('', observations) };
        if (repeated) answerNow = true;
        repeated = true;
        messages.push({
          role: 'tool',
          toolCallId: call.id,
          name: call.name,
          content: `You already called ${call.name} with these arguments (call ${earlier + 1}); its result is above. Do not call it again: use that result and answer.`,
        });
        continue;
      }
      const outcome = await ctx.tools.call(call.name, call.arguments);
      observations.push({ call, outcome });
      if (!outcome.ok && (fatal.has(outcome.stopReason) || ctx.budget.stopReason)) {
        return {
          stopReason: ctx.budget.stopReason ?? outcome.stopReason,
          output: opts.finish('', observations),
          error: outcome.message,
        };
      }
      if (outcome.ok) seen.set(key, observations.length - 1);
      // Failures too: a tool's error message can quote the far side (an HTTP body, a page).
      const value = outcome.ok
        ? outcome.output
        : {
            error: outcome.stopReason,
            message:
              outcome.code === 'unknown_tool' ? `${outcome.message}; the tools are: ${toolNames}` : outcome.message,
          };
      messages.push({
        role: 'tool',
        toolCallId: call.id,
        name: call.name,
        content: renderUntrusted(call.name, value, MAX_OBSERVATION_CHARS),
      });
    }
    if (answerNow) {
      messages.push({
        role: 'user',
        content:
          'You have called the same tool with the same arguments again. Answer the task now from the results above.',
      });
    }
  }
}

type RepairableError = LlmUnusableOutputError | LlmContextOverflowError;

function isRepairable(err: unknown): err is RepairableError {
  return err instanceof LlmUnusableOutputError || err instanceof LlmContextOverflowError;
}

/**
 * Shortens the conversation for a context window it overflowed: every tool output but the latest
 * is replaced by a short note. Returns false when there was nothing left to shorten.
 */
function elideOldObservations(messages: ChatMessage[]): boolean {
  const toolMessages = messages.filter((m) => m.role === 'tool' && m.content !== ELIDED);
  for (const m of toolMessages.slice(0, -1)) m.content = ELIDED;
  return toolMessages.length > 1;
}
