import { UNTRUSTED_DATA_RULE } from '@flotilla/runtime/llm';
import { type AgentContext, type AgentResult, dependencyContext } from '@flotilla/runtime/worker';
import { z } from 'zod';
import type { CoderInput, CoderOutput } from './schemas.js';
import { Language } from './tools/code-run.js';

const Draft = z.object({ language: Language, code: z.string().min(1) });

const SYSTEM = [
  'You are a coding agent. Write one small, self-contained program that does the task and prints its result.',
  'It will run in an isolated sandbox with no network, in its own directory /work; files it writes to out/ come back.',
  'Reply with JSON only.',
].join(' ');

/**
 * Write, then run through the gateway. The coder never executes code itself: if code.run is denied
 * (off the allowlist, kill switch), the run ends with that stop reason and the unexecuted draft.
 */
export async function code(input: CoderInput, ctx: AgentContext): Promise<AgentResult<CoderOutput>> {
  const stop = ctx.budget.chargeStep();
  if (stop) return { stopReason: stop };
  const reply = await ctx.llm.chat(
    {
      messages: [
        { role: 'system', content: `${SYSTEM}\n\n${UNTRUSTED_DATA_RULE}` },
        { role: 'user', content: `Task: ${input.task}\nLanguage: ${input.language}${dependencyContext(ctx.envelope)}` },
      ],
      responseFormat: { name: 'code', schema: z.toJSONSchema(Draft) as Record<string, unknown> },
    },
    { signal: ctx.signal, budget: ctx.budget },
  );
  if (ctx.budget.stopReason) return { stopReason: ctx.budget.stopReason };

  let draft: z.output<typeof Draft>;
  try {
    draft = Draft.parse(JSON.parse(reply.content));
  } catch (err) {
    return { stopReason: 'runtime_error', error: `model returned no usable code: ${(err as Error).message}` };
  }

  const outcome = await ctx.tools.call('code.run', draft);
  if (!outcome.ok) {
    return { stopReason: outcome.stopReason, output: { ...draft }, error: outcome.message };
  }
  const run = outcome.output as CoderOutput['run'];
  return { stopReason: 'finish', output: { ...draft, run } };
}
