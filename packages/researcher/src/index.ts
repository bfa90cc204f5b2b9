import { defineWorker, loadConfigOrExit } from '@flotilla/runtime';
import { z } from 'zod';
import { research } from './agent.js';
import { httpConfigSchema, httpGetTool } from './tools/http-get.js';
import { memorySearchTool, notesWriteTool } from './tools/notes.js';

export const ResearcherInput = z.object({
  question: z.string().min(1).max(4000).describe('What to find out'),
  context: z.string().max(8000).optional().describe('What the planner already knows'),
});
export type ResearcherInput = z.output<typeof ResearcherInput>;

export const ResearcherOutput = z.object({
  answer: z.string(),
  findings: z.array(z.object({ claim: z.string(), source: z.string() })),
  sources: z.array(z.string()),
});
export type ResearcherOutput = z.output<typeof ResearcherOutput>;

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

export { httpConfigSchema, httpPolicy, isPrivateAddress, policedGet } from './tools/http-get.js';
