import { z } from 'zod';
import { ApprovalDecision } from './approval.js';
import { Usage } from './budget.js';
import { StopReason } from './stop-reason.js';
import { PlannedSubtask, TaskStatus } from './task.js';

const base = { taskId: z.string(), at: z.string() };

/** Progress events, in the order a client sees them on GET /v1/tasks/:id/events. */
export const TaskEvent = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.literal('status'), status: TaskStatus }),
  z.object({
    ...base,
    type: z.literal('planned'),
    subtasks: z.array(PlannedSubtask),
    /** Present on the one re-plan after failed subtasks: `subtasks` is then the whole plan, old and new. */
    replanned: z.literal(true).optional(),
  }),
  z.object({
    ...base,
    type: z.literal('subtask_started'),
    subtaskId: z.string(),
    role: z.string(),
    replica: z.string(),
  }),
  z.object({
    ...base,
    // A run that parked for an approval going on: not a new execution (readRunLedger counts starts only).
    type: z.literal('subtask_resumed'),
    subtaskId: z.string(),
    role: z.string(),
    replica: z.string(),
  }),
  z.object({
    ...base,
    type: z.literal('approval_requested'),
    subtaskId: z.string(),
    role: z.string(),
    approvalId: z.string(),
    tool: z.string(),
    /** The call's arguments after the logger's redaction, truncated: never a secret. */
    summary: z.string(),
    /** ISO time after which the call is denied (approval_timeout). */
    deadline: z.string(),
    /** Who may decide: an admin key. */
    approvers: z.literal('admin'),
  }),
  z.object({
    ...base,
    type: z.literal('approval_decided'),
    subtaskId: z.string(),
    approvalId: z.string(),
    decision: ApprovalDecision,
    by: z.string(),
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
    /** Services (`memory`) that were down during the run (SubtaskResult.degraded). */
    degraded: z.array(z.string()).optional(),
  }),
  z.object({ ...base, type: z.literal('completed'), answer: z.string(), partial: z.boolean() }),
  z.object({ ...base, type: z.literal('failed'), reason: z.string() }),
  z.object({ ...base, type: z.literal('cancelled') }),
]);
export type TaskEvent = z.infer<typeof TaskEvent>;
export type TaskEventType = TaskEvent['type'];

/** An event before it is stored: `at` is stamped when it is appended. */
export type TaskEventBody = TaskEvent extends infer E ? (E extends TaskEvent ? Omit<E, 'at'> : never) : never;

/**
 * A task's event stream holds one event per entry, as JSON under this field. Every writer (the
 * orchestrator's scripts, workers' run books) and every reader (the API, the ledger) goes through
 * encodeTaskEvent / decodeTaskEventEntry, so the format has one definition.
 */
export const TASK_EVENT_FIELD = 'event';

/** The stored JSON of an event, stamped with `at` (default: now). */
export function encodeTaskEvent(event: TaskEventBody, at: Date = new Date()): string {
  return JSON.stringify({ ...event, at: at.toISOString() });
}

/**
 * The event of one stream entry (its field/value list as XRANGE returns it), or undefined when
 * the entry holds no readable TaskEvent: the stream is shared by every service, so trust nothing.
 */
export function decodeTaskEventEntry(fields: readonly string[]): TaskEvent | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== TASK_EVENT_FIELD) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(fields[i + 1] as string);
    } catch {
      return undefined;
    }
    const parsed = TaskEvent.safeParse(raw);
    return parsed.success ? parsed.data : undefined;
  }
  return undefined;
}
