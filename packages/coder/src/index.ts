import { loadConfigOrExit } from '@flotilla/runtime';
import { defineWorker } from '@flotilla/runtime/worker';
import { code } from './agent.js';
import { coderConfigSchema, sandboxTokenCheck } from './config.js';
import { CoderInput, CoderOutput } from './schemas.js';
import { codeRunTool } from './tools/code-run.js';

export const coder = defineWorker({
  role: 'coder',
  description: 'Writes a small program for a task and runs it in the isolated sandbox; returns code and output.',
  input: CoderInput,
  examples: [
    {
      goal: 'How many days are there from 1 March 2024 to 1 March 2025?',
      input: { task: 'Print the number of days from 2024-03-01 to 2025-03-01.', language: 'javascript' },
    },
  ],
  output: CoderOutput,
  concurrency: 1,
  tools: ({ env }) => {
    const config = loadConfigOrExit(coderConfigSchema, { env, check: sandboxTokenCheck });
    return [
      codeRunTool({ url: config.SANDBOX_URL, token: config.SANDBOX_TOKEN, timeoutMs: config.SANDBOX_TIMEOUT_MS }),
    ];
  },
  handler: code,
});
