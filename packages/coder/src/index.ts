import { defineWorker, loadConfigOrExit, secret } from '@flotilla/runtime';
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

/**
 * Where the coder finds the sandbox. Defaults:
 *
 * | variable               | default | why                                                              |
 * |------------------------|---------|------------------------------------------------------------------|
 * | SANDBOX_URL            | unset   | no sandbox: code.run fails with sandbox_unavailable              |
 * | SANDBOX_TOKEN(_FILE)   | unset   | the sandbox's own token; required with SANDBOX_URL (it is closed by default) |
 * | SANDBOX_TIMEOUT_MS     | 30000   | one run's round trip; the sandbox's own wall-time limit is 10 s     |
 */
export const coderConfigSchema = z.object({
  SANDBOX_URL: z.string().url().optional(),
  SANDBOX_TOKEN: secret(z.string().min(16, 'must be at least 16 characters').optional()),
  SANDBOX_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
});

export const coder = defineWorker({
  role: 'coder',
  description: 'Writes a small program for a task and runs it in the isolated sandbox; returns code and output.',
  input: CoderInput,
  output: CoderOutput,
  concurrency: 1,
  tools: ({ env }) => {
    const config = loadConfigOrExit(coderConfigSchema, {
      env,
      check: (c) =>
        c.SANDBOX_URL && !c.SANDBOX_TOKEN
          ? [
              {
                variable: 'SANDBOX_TOKEN',
                message: 'required with SANDBOX_URL (set SANDBOX_TOKEN or SANDBOX_TOKEN_FILE)',
              },
            ]
          : [],
    });
    return [
      codeRunTool({ url: config.SANDBOX_URL, token: config.SANDBOX_TOKEN, timeoutMs: config.SANDBOX_TIMEOUT_MS }),
    ];
  },
  handler: code,
});

export {
  CodeRunInput,
  type CodeRunOptions,
  codeRunTool,
  SandboxError,
  SandboxUnavailableError,
} from './tools/code-run.js';
