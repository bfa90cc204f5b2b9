import { z } from 'zod';

/** What a researcher subtask asks; its JSON Schema is what the planner fills in. */
export const ResearcherInput = z.object({
  question: z.string().min(1).max(4000).describe('What to find out'),
  context: z.string().max(8000).optional().describe('What the planner already knows'),
});
export type ResearcherInput = z.output<typeof ResearcherInput>;

/** A finished research run: the answer and the findings behind it, each with its source. */
export const ResearcherOutput = z.object({
  answer: z.string(),
  findings: z.array(z.object({ claim: z.string(), source: z.string() })),
  sources: z.array(z.string()),
});
export type ResearcherOutput = z.output<typeof ResearcherOutput>;
