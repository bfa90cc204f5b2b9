import { type ChatMessage, renderUntrusted, UNTRUSTED_DATA_RULE } from '@flotilla/runtime/llm';
import { type AgentContext, type AgentResult, dependencyContext } from '@flotilla/runtime/worker';
import { z } from 'zod';
import type { CoderInput, CoderOutput } from './schemas.js';
import { Language, type RunResult } from './tools/code-run.js';

const Draft = z.object({ language: Language, code: z.string().min(1) });
/** What the model is asked for, as a JSON Schema: the same for every draft of every run. */
const DRAFT_SCHEMA = z.toJSONSchema(Draft) as Record<string, unknown>;

const SYSTEM = [
  'You are a coding agent. Write one small, self-contained program that does the task and prints its result.',
  'It will run in an isolated sandbox with no network, in its own directory /work; files it writes to out/ come back.',
  'Reply with JSON only.',
].join(' ');

/**
 * Drafts one run may make: the first, and one more to repair a reply that was not usable code or to
 * fix a program that failed (its stderr shown to the model). Real models often fix an error they are
 * shown; a third try rarely helps and only spends the budget.
 */
const MAX_DRAFTS = 2;

/** The part of a failed run's stderr the model sees when asked to fix its program. */
const MAX_STDERR_CHARS = 2_000;

/**
 * Write, then run through the gateway. The coder never executes code itself: if code.run is denied
 * (off the allowlist, kill switch), the run ends with that stop reason and the unexecuted draft.
 * A reply that is not usable code, or a program that exits non-zero, gets one more draft; after
 * that, unusable replies end the run with `model_error` and a failing program is returned as it ran.
 */
export async function code(input: CoderInput, ctx: AgentContext): Promise<AgentResult<CoderOutput>> {
  const messages: ChatMessage[] = [
    { role: 'system', content: `${SYSTEM}\n\n${UNTRUSTED_DATA_RULE}` },
    { role: 'user', content: `Task: ${input.task}\nLanguage: ${input.language}${dependencyContext(ctx.envelope)}` },
  ];
  let last: CoderOutput | undefined;
  for (let n = 1; ; n++) {
    const stop = ctx.budget.chargeStep();
    if (stop) return { stopReason: stop, ...(last && { output: last }) };
    const reply = await ctx.llm.chat(
      { messages, responseFormat: { name: 'code', schema: DRAFT_SCHEMA } },
      { signal: ctx.signal, budget: ctx.budget },
    );
    if (ctx.budget.stopReason) return { stopReason: ctx.budget.stopReason, ...(last && { output: last }) };

    let draft: z.output<typeof Draft>;
    try {
      draft = Draft.parse(JSON.parse(reply.content));
    } catch (err) {
      const why = err instanceof z.ZodError ? z.prettifyError(err) : (err as Error).message;
      if (n >= MAX_DRAFTS) return { stopReason: 'model_error', error: `model returned no usable code: ${why}` };
      messages.push(
        { role: 'assistant', content: reply.content },
        {
          role: 'user',
          content: `That reply was not a JSON object with "language" and "code" (${why}). Reply with that JSON only.`,
        },
      );
      continue;
    }

    const outcome = await ctx.tools.call('code.run', draft);
    if (!outcome.ok) return { stopReason: outcome.stopReason, output: { ...draft }, error: outcome.message };
    const run = outcome.output as RunResult;
    last = { ...draft, run };
    if (run.exitCode === 0 || run.timedOut || run.memoryExceeded || n >= MAX_DRAFTS) {
      return { stopReason: 'finish', output: last };
    }
    messages.push(
      { role: 'assistant', content: reply.content },
      {
        role: 'user',
        content: `The program exited with code ${run.exitCode}. Its stderr follows. Fix the program and reply with the JSON only.\n${renderUntrusted('code.run', run.stderr, MAX_STDERR_CHARS)}`,
      },
    );
  }
}
