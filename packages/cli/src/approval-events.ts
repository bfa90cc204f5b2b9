import { TaskEvent } from '@flotilla/contracts';
import { z } from 'zod';

// The approval events on a task's stream, as the approvals work (branch `approvals`, issue 13 §2)
// emits them. They are not in @flotilla/contracts' TaskEvent on this branch yet, so the CLI reads
// them with this schema of its own; once the contract carries them, TaskEvent parses them first and
// this file can go (the shapes are the same).

const base = { taskId: z.string(), at: z.string() };

export const ApprovalEvent = z.discriminatedUnion('type', [
  z.object({
    ...base,
    type: z.literal('approval_requested'),
    subtaskId: z.string(),
    role: z.string(),
    approvalId: z.string(),
    tool: z.string(),
    summary: z.string(),
    deadline: z.string(),
    approvers: z.string(),
  }),
  z.object({
    ...base,
    type: z.literal('approval_decided'),
    subtaskId: z.string(),
    approvalId: z.string(),
    decision: z.string(),
    by: z.string(),
  }),
]);
export type ApprovalEvent = z.infer<typeof ApprovalEvent>;
export type ApprovalRequested = Extract<ApprovalEvent, { type: 'approval_requested' }>;

/** What the live view follows: the task's progress and its approvals. */
export type WatchEvent = TaskEvent | ApprovalEvent;

export function parseWatchEvent(raw: unknown): WatchEvent | undefined {
  const task = TaskEvent.safeParse(raw);
  if (task.success) return task.data;
  const approval = ApprovalEvent.safeParse(raw);
  return approval.success ? approval.data : undefined;
}
