import { z } from 'zod';
import { Language, RunResult } from './tools/code-run.js';

/** What a coder subtask asks; its JSON Schema is what the planner fills in. */
export const CoderInput = z.object({
  task: z.string().min(1).max(4000).describe('What the program must do'),
  language: Language.default('javascript'),
});
export type CoderInput = z.output<typeof CoderInput>;

/** The program written, and its run in the sandbox when it ran. */
export const CoderOutput = z.object({
  language: Language,
  code: z.string(),
  run: RunResult.optional(),
});
export type CoderOutput = z.output<typeof CoderOutput>;
