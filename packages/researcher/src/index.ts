import { loadConfigOrExit, memorySearchTool } from '@flotilla/runtime';
import { defineWorker } from '@flotilla/runtime/worker';
import { research } from './agent.js';
import { ResearcherInput, ResearcherOutput } from './schemas.js';
import { httpConfigSchema, httpGetTool } from './tools/http-get.js';
import { notesWriteTool } from './tools/notes.js';

export const researcher = defineWorker({
  role: 'researcher',
  description: 'Finds facts: searches memory and allowlisted web pages, saves notes, answers with cited findings.',
  input: ResearcherInput,
  output: ResearcherOutput,
  tools: ({ memory, env }) => [
    memorySearchTool(memory),
    httpGetTool(loadConfigOrExit(httpConfigSchema, { env })),
    notesWriteTool(memory),
  ],
  handler: research,
});
