import { z } from 'zod';
import { Usage } from './budget.js';
import { StopReason } from './stop-reason.js';
import { PlannedSubtask, TaskStatus } from './task.js';

const base = { taskId: z.string(), at: z.string() };

/** Progress events, in the order a client sees them on GET /v1/tasks/:id/events. */
export const TaskEvent = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.literal('status'), status: TaskStatus }),
  z.object({ ...base, type: z.literal('planned'), subtasks: z.array(PlannedSubtask) }),
  z.object({
    ...base,
    type: z.literal('subtask_started'),
    subtaskId: z.string(),
    role: z.string(),
    replica: z.string(),
  }),
  z.object({
    ...base,
    type: z.literal('subtask_finished'),
    subtaskId: z.string(),
    role: z.string(),
    replica: z.string(),
    ok: z.boolean(),
    stopReason: StopReason,
    usage: Usage,
  }),
  z.object({ ...base, type: z.literal('completed'), answer: z.string(), partial: z.boolean() }),
  z.object({ ...base, type: z.literal('failed'), reason: z.string() }),
  z.object({ ...base, type: z.literal('cancelled') }),
]);
export type TaskEvent = z.infer<typeof TaskEvent>;
export type TaskEventType = TaskEvent['type'];
