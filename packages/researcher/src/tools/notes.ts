import { defineTool, type Memory } from '@flotilla/runtime';
import { z } from 'zod';

const NOTES_NAMESPACE = 'notes';

/** Searches what earlier runs learned. Read-only, so the gateway may retry it freely. */
export function memorySearchTool(memory: Memory | undefined) {
  return defineTool({
    name: 'memory.search',
    description: 'Search research notes and earlier answers for passages related to a query.',
    input: z.object({
      query: z.string().min(1).max(2000),
      n: z.number().int().min(1).max(20).default(5),
    }),
    sideEffects: 'read',
    timeoutMs: 5_000,
    retries: 2,
    run: async ({ query, n }) => {
      if (!memory) return { hits: [] };
      const hits = await memory.query(NOTES_NAMESPACE, query, { n });
      return { hits: hits.map((h) => ({ id: h.id, text: h.text.slice(0, 1000), distance: h.distance })) };
    },
  });
}

/**
 * Saves a note. A write: the gateway gives each call an idempotency key (task/subtask/call index),
 * and the note's id is that key, so a retried job stores it once.
 */
export function notesWriteTool(memory: Memory | undefined) {
  return defineTool({
    name: 'notes.write',
    description: 'Save a research note so later runs can find it.',
    input: z.object({
      text: z.string().min(1).max(8000),
      source: z.string().max(2000).optional(),
    }),
    sideEffects: 'write',
    timeoutMs: 5_000,
    retries: 2,
    run: async ({ text, source }, ctx) => {
      if (!memory) return { saved: false, reason: 'memory is not configured' };
      const id = ctx.idempotencyKey ?? undefined;
      const [saved] = await memory.add(NOTES_NAMESPACE, [{ id, text, metadata: source ? { source } : {} }]);
      return { saved: true, id: saved ?? id };
    },
  });
}
