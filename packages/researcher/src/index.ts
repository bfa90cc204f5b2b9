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
  examples: [
    {
      goal: 'Which team is on call for the search cluster this week? Check our notes.',
      input: { question: 'Which team is on call for the search cluster this week? Search the notes in memory.' },
    },
    {
      goal: 'What does https://docs.example.org/limits say about rate limits?',
      input: { question: 'What does https://docs.example.org/limits say about rate limits? Read that page.' },
    },
  ],
  output: ResearcherOutput,
  tools: ({ memory, env }) => [
    memorySearchTool(memory),
    httpGetTool(loadConfigOrExit(httpConfigSchema, { env })),
    notesWriteTool(memory),
  ],
  handler: research,
});
