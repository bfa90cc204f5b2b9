import { defineWorker, loadConfigOrExit } from '@flotilla/runtime';
import { z } from 'zod';
import { code } from './agent.js';
import { codeRunTool, Language, RunResult } from './tools/code-run.js';

export const CoderInput = z.object({
  task: z.string().min(1).max(4000).describe('What the program must do'),
  language: Language.default('javascript'),
});
export type CoderInput = z.output<typeof CoderInput>;

export const CoderOutput = z.object({
  language: Language,
  code: z.string(),
  run: RunResult.optional(),
});
export type CoderOutput = z.output<typeof CoderOutput>;

/** Where the coder finds the sandbox; unset until the sandbox service exists. */
export const coderConfigSchema = z.object({
  SANDBOX_URL: z.string().url().optional(),
  SANDBOX_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
});

export const coder = defineWorker({
  role: 'coder',
  description: 'Writes a small program for a task and runs it in the isolated sandbox; returns code and output.',
  input: CoderInput,
  output: CoderOutput,
  concurrency: 1,
  tools: ({ env }) => {
    const config = loadConfigOrExit(coderConfigSchema, { env });
    return [codeRunTool(config.SANDBOX_URL, config.SANDBOX_TIMEOUT_MS)];
  },
  handler: code,
});

export { codeRunTool, SandboxUnavailableError } from './tools/code-run.js';
