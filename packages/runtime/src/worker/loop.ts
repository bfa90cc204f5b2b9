import type { StopReason } from '@flotilla/contracts';
import type { ChatMessage, LlmToolCall } from '../llm/index.js';
import { renderUntrusted, UNTRUSTED_DATA_RULE } from '../llm/untrusted.js';
import type { ToolOutcome } from '../tools/index.js';
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
 * The model -> tool call -> observation loop every agent role shares, bounded by the run's budget:
 * each model turn is a step, each tool call goes through the gateway (and its budget check), and
 * the first limit hit ends the run with that limit's stop reason. The outputs of the subtasks the
 * run depends on follow the user message, as untrusted data.
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

  for (;;) {
    const stepStop = ctx.budget.chargeStep();
    if (stepStop) return { stopReason: stepStop, output: opts.finish('', observations) };

    const reply = await ctx.llm.chat({ messages, tools }, { signal: ctx.signal, budget: ctx.budget });
    if (ctx.budget.stopReason)
      return { stopReason: ctx.budget.stopReason, output: opts.finish(reply.content, observations) };

    if (reply.toolCalls.length === 0) {
      return { stopReason: 'finish', output: opts.finish(reply.content, observations) };
    }

    messages.push({ role: 'assistant', content: reply.content, toolCalls: reply.toolCalls });
    for (const call of reply.toolCalls) {
      const outcome = await ctx.tools.call(call.name, call.arguments);
      observations.push({ call, outcome });
      if (!outcome.ok && (fatal.has(outcome.stopReason) || ctx.budget.stopReason)) {
        return {
          stopReason: ctx.budget.stopReason ?? outcome.stopReason,
          output: opts.finish('', observations),
          error: outcome.message,
        };
      }
      // Failures too: a tool's error message can quote the far side (an HTTP body, a page).
      const value = outcome.ok ? outcome.output : { error: outcome.stopReason, message: outcome.message };
      messages.push({
        role: 'tool',
        toolCallId: call.id,
        name: call.name,
        content: renderUntrusted(call.name, value, MAX_OBSERVATION_CHARS),
      });
    }
  }
}
