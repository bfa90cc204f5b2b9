import { defineTool, MEMORY_DEPENDENCY, type MemoryStore } from '@flotilla/runtime';
import { z } from 'zod';

/**
 * Saves a note in the task's tenant's memory, with its provenance: this task, subtask and role,
 * the tool, and the source the model named. The text is the model's, written after reading
 * untrusted pages, so later readers get it back marked untrusted (memory.search). A write: the
 * gateway gives each call an idempotency key, and the note's id is that key, so a retried job
 * stores it once; the "no writes" kill switch stops it.
 */
export function notesWriteTool(memory: MemoryStore | undefined) {
  return defineTool({
    name: 'notes.write',
    description: 'Save a research note, with the URL it came from, so later tasks of this client can find it.',
    input: z.object({
      text: z.string().min(1).max(8000),
      source: z.string().max(2000).optional(),
    }),
    sideEffects: 'write',
    timeoutMs: 5_000,
    retries: 2,
    ...MEMORY_DEPENDENCY,
    run: async ({ text, source }, ctx) => {
      if (!memory) return { saved: false, reason: 'memory is not configured' };
      const id = ctx.idempotencyKey ?? undefined;
      const [saved] = await memory.forTenant(ctx.tenant).add('notes', [
        {
          id,
          text,
          provenance: {
            taskId: ctx.taskId,
            subtaskId: ctx.subtaskId,
            role: ctx.role,
            tool: 'notes.write',
            sourceUrl: source,
          },
        },
      ]);
      return { saved: true, id: saved ?? id };
    },
  });
}
