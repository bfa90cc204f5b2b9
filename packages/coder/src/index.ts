import { loadConfigOrExit } from '@flotilla/runtime';
import { defineWorker } from '@flotilla/runtime/worker';
import { code } from './agent.js';
import { coderConfigSchema } from './config.js';
import { CoderInput, CoderOutput } from './schemas.js';
import { codeRunTool } from './tools/code-run.js';

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
