import { BudgetLimits, PlannedSubtask, TaskBudget, TaskStatus } from '@flotilla/contracts';
import { z } from 'zod';
import { DEFAULT_OWNER } from './owner.js';

/** A task's Redis hash, parsed. Every field is a string in Redis; JSON fields are parsed here, once. */
export interface TaskRecord {
  taskId: string;
  /** The tenant the task belongs to (the submitting key's name); only it can read or cancel the task. */
  owner: string;
  status: TaskStatus;
  goal: string;
  budget: TaskBudget | undefined;
  metadata: Record<string, string | number | boolean> | undefined;
  idempotencyKey: string | undefined;
  /** sha256 of the canonical request, to tell an identical replay from a conflicting reuse of a key. */
  requestHash: string | undefined;
  /** The effective limits: the caller's budget tightened by the orchestrator's own. */
  limits: BudgetLimits;
  /** Epoch ms after which the task's work is worthless. */
  deadline: number;
  plan: PlannedSubtask[];
  answer: string | undefined;
  partial: boolean | undefined;
  error: string | undefined;
  /** Why subtasks that failed without a result failed (invalid input, retries exhausted). */
  subtaskErrors: Record<string, string>;
  /** The answer and notes are in memory (written after completion, so the answer never waits on them). */
  remembered: boolean;
  /** The one re-plan after failed subtasks has been made (see extendPlan); its subtasks are in `plan`. */
  replanned: boolean;
  orchestratorTokens: number;
  traceId: string | undefined;
  createdAt: string;
  updatedAt: string;
}

const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const RecordHash = z.object({
  taskId: z.string(),
  owner: z.string().min(1).optional(),
  status: TaskStatus,
  goal: z.string(),
  budget: json(TaskBudget).optional(),
  metadata: json(z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))).optional(),
  idempotencyKey: z.string().optional(),
  requestHash: z.string().optional(),
  limits: json(BudgetLimits),
  deadline: z.coerce.number(),
  plan: json(z.array(PlannedSubtask)).optional(),
  answer: z.string().optional(),
  partial: z.enum(['0', '1']).optional(),
  error: z.string().optional(),
  subtaskErrors: json(z.record(z.string(), z.string())).optional(),
  remembered: z.literal('1').optional(),
  replanned: z.literal('1').optional(),
  orchestratorTokens: z.coerce.number().optional(),
  traceId: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/** Parses a task hash; undefined when the hash is missing or was not written by this code. */
export function parseTaskRecord(hash: Record<string, string>): TaskRecord | undefined {
  if (!hash.taskId) return undefined;
  const r = RecordHash.safeParse(hash);
  if (!r.success) return undefined;
  const h = r.data;
  return {
    taskId: h.taskId,
    // Tasks written before tenants existed belonged to the one deployment token, i.e. DEFAULT_OWNER.
    owner: h.owner ?? DEFAULT_OWNER,
    status: h.status,
    goal: h.goal,
    budget: h.budget,
    metadata: h.metadata,
    idempotencyKey: h.idempotencyKey,
    requestHash: h.requestHash,
    limits: h.limits,
    deadline: h.deadline,
    plan: h.plan ?? [],
    answer: h.answer,
    partial: h.partial === undefined ? undefined : h.partial === '1',
    error: h.error,
    subtaskErrors: h.subtaskErrors ?? {},
    remembered: h.remembered === '1',
    replanned: h.replanned === '1',
    orchestratorTokens: h.orchestratorTokens ?? 0,
    traceId: h.traceId,
    createdAt: h.createdAt,
    updatedAt: h.updatedAt,
  };
}
