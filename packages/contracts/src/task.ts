import { z } from 'zod';
import { TaskBudget, Usage } from './budget.js';
import { StopReason } from './stop-reason.js';
import { NON_BLANK, text } from './text.js';
import { contractVersion } from './version.js';

/** Caller-chosen key: the same key always yields the same task. */
export const IdempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:-]+$/, 'only letters, digits and . _ : -');

const metadataValue = z.union([text({ max: 1000 }), z.number(), z.boolean()]);
const MAX_METADATA_KEYS = 32;

export const TaskRequest = z
  .object({
    v: contractVersion,
    goal: text({
      min: 1,
      max: 8000,
      pattern: { regex: NON_BLANK, message: 'must not be blank' },
      trim: true,
    }).describe('What to achieve; leading and trailing whitespace is dropped'),
    budget: TaskBudget.optional(),
    idempotencyKey: IdempotencyKey.optional(),
    metadata: z
      // The JSON body parser refuses a `__proto__` key anywhere (prototype poisoning), so the
      // schema says so rather than promise a key the server answers with 400.
      .record(text({ min: 1, max: 64, forbidden: ['__proto__'] }), metadataValue)
      .refine((m) => Object.keys(m).length <= MAX_METADATA_KEYS, `at most ${MAX_METADATA_KEYS} keys`)
      .meta({ maxProperties: MAX_METADATA_KEYS, description: 'Caller labels, kept with the task' })
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
  /**
   * Subtasks of the same plan whose outputs this one needs: it is dispatched once they have ended
   * ok and receives their outputs (SubtaskEnvelope.dependencies). Absent: it runs at once.
   */
  dependsOn: z.array(z.string()).optional(),
  /**
   * Set by the re-plan on a new subtask that repeats a failed one's work exactly (same role, same
   * input): the failed subtask's id. Its writes reuse that subtask's idempotency keys, so what the
   * failed run already wrote is replayed rather than written again.
   */
  retryOf: z.string().optional(),
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
  /** Services (`memory`) that were down during the run: the output was made without them (SubtaskResult.degraded). */
  degraded: z.array(z.string()).optional(),
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

/** One task in GET /v1/tasks: enough to pick it out; its TaskView has the rest. */
export const TaskSummary = z.object({
  taskId: z.string(),
  status: TaskStatus,
  goal: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type TaskSummary = z.infer<typeof TaskSummary>;

/** A page of GET /v1/tasks, newest first. */
export const TaskPage = z.object({
  tasks: z.array(TaskSummary),
  /** Pass as `cursor` for the next page; null when there is none. A page may be short (even empty) while this is set. */
  nextCursor: z.string().nullable(),
});
export type TaskPage = z.infer<typeof TaskPage>;
