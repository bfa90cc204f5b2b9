import { z } from 'zod';
import { TaskBudget, Usage } from './budget.js';
import { StopReason } from './stop-reason.js';
import { contractVersion } from './version.js';

/** Caller-chosen key: the same key always yields the same task. */
export const IdempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:-]+$/, 'only letters, digits and . _ : -');

const metadataValue = z.union([z.string().max(1000), z.number(), z.boolean()]);

export const TaskRequest = z
  .object({
    v: contractVersion,
    goal: z.string().trim().min(1).max(8000),
    budget: TaskBudget.optional(),
    idempotencyKey: IdempotencyKey.optional(),
    metadata: z
      .record(z.string().min(1).max(64), metadataValue)
      .refine((m) => Object.keys(m).length <= 32, 'at most 32 keys')
      .optional(),
  })
  .strict();
export type TaskRequest = z.infer<typeof TaskRequest>;
export type TaskRequestInput = z.input<typeof TaskRequest>;

export const TaskStatus = z.enum(['queued', 'planning', 'running', 'aggregating', 'completed', 'failed', 'cancelled']);
export type TaskStatus = z.infer<typeof TaskStatus>;

export const TERMINAL_TASK_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

export const SubtaskState = z.enum(['waiting', 'active', 'completed', 'failed', 'cancelled']);
export type SubtaskState = z.infer<typeof SubtaskState>;

export const PlannedSubtask = z.object({
  subtaskId: z.string(),
  role: z.string(),
  input: z.unknown(),
});
export type PlannedSubtask = z.infer<typeof PlannedSubtask>;

export const SubtaskView = PlannedSubtask.extend({
  state: SubtaskState,
  replica: z.string().optional(),
  /** Handler starts so far (the execution ledger): 1 normally, more after a redelivery. */
  runs: z.number().int().nonnegative().optional(),
  stopReason: StopReason.optional(),
  usage: Usage.optional(),
  error: z.string().optional(),
});
export type SubtaskView = z.infer<typeof SubtaskView>;

/** What GET /v1/tasks/:id returns. */
export const TaskView = z.object({
  v: contractVersion,
  taskId: z.string(),
  status: TaskStatus,
  goal: z.string(),
  budget: TaskBudget.optional(),
  plan: z.array(PlannedSubtask),
  subtasks: z.array(SubtaskView),
  answer: z.string().optional(),
  partial: z.boolean().optional(),
  error: z.string().optional(),
  stopReasons: z.record(z.string(), StopReason),
  usage: Usage,
  traceId: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type TaskView = z.infer<typeof TaskView>;
