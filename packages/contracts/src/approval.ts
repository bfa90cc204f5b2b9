import { z } from 'zod';

/** Where an approval stands. Only `pending` can change, once, to one of the others. */
export const ApprovalStatus = z.enum(['pending', 'approved', 'denied', 'timed_out', 'cancelled']);
export type ApprovalStatus = z.infer<typeof ApprovalStatus>;

/** What an approval_decided event records: an operator's answer, a timeout, or the task's cancellation. */
export const ApprovalDecision = z.enum(['approve', 'deny', 'timeout', 'cancel']);
export type ApprovalDecision = z.infer<typeof ApprovalDecision>;

/** A tool call waiting for (or past) a person's decision (GET /v1/admin/approvals). */
export const Approval = z.object({
  id: z.string(),
  status: ApprovalStatus,
  taskId: z.string(),
  subtaskId: z.string(),
  role: z.string(),
  tool: z.string(),
  /** The call's arguments after the logger's redaction, truncated: never a secret. */
  summary: z.string(),
  /** The task's tenant. */
  owner: z.string(),
  requestedAt: z.string(),
  /** After it, the call is denied with approval_timeout. */
  deadline: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  reason: z.string().nullable(),
  /** Who may decide: any admin key. */
  approvers: z.literal('admin'),
});
export type Approval = z.infer<typeof Approval>;
