import {
  Approval,
  ApprovalStatus,
  NON_BLANK,
  QueueStats,
  RoleReplicas,
  TaskView,
  TenantId,
  text,
} from '@flotilla/contracts';
import { z } from 'zod';
import { MAX_PAGE_SIZE, TaskListQuery } from './schemas.js';

// The operator's (admin) operations on the wire: handlers parse with these and openapi.ts documents
// these, as for the task operations.

/** A tool name or glob as the kill switch stores it: commas separate entries, so none inside one. */
const ToolGlob = z
  .string()
  .regex(/^[A-Za-z0-9_.*?[\]!{}-]{1,100}$/, 'must be a tool name or glob (letters, digits, _ . - and * ? [ ] ! { })');

/** PATCH /v1/admin/kill-switch: the fields to change (others keep their value), and why. */
export const KillSwitchPatch = z
  .strictObject({
    global: z.boolean().optional().describe('Stop every tool'),
    noWrites: z.boolean().optional().describe("Stop every tool with sideEffects 'write'"),
    tools: z
      .array(ToolGlob)
      .max(100)
      .optional()
      .describe('The complete list of tools (names or globs) stopped one by one; [] clears it'),
    reason: text({
      min: 1,
      max: 500,
      trim: true,
      pattern: { regex: NON_BLANK, message: 'must say why (it is audited)' },
    }).describe('Why: recorded with the change and the admin key’s name'),
  })
  .refine((p) => p.global !== undefined || p.noWrites !== undefined || p.tools !== undefined, {
    message: 'name at least one of global, noWrites, tools',
    path: ['global'],
  })
  // The refinement above, said in JSON Schema, so the document refuses what the handler refuses.
  .meta({ anyOf: [{ required: ['global'] }, { required: ['noWrites'] }, { required: ['tools'] }] });

export const KillSwitchView = z.object({
  global: z.boolean(),
  noWrites: z.boolean(),
  tools: z.array(z.string()),
  lastChange: z
    .object({ by: z.string(), reason: z.string(), at: z.string() })
    .nullable()
    .describe('Who changed the switch last, why and when; null if never through the API'),
});

export const ReplicaList = z.object({ roles: z.array(RoleReplicas) });

export const QueueList = z.object({ queues: z.array(QueueStats) });

export const FailedJobPage = z.object({
  jobs: z.array(
    z.object({
      jobId: z.string(),
      failedReason: z.string(),
      attemptsMade: z.number().int().nonnegative(),
      failedAt: z.string().nullable(),
      taskId: z.string().nullable(),
      subtaskId: z.string().nullable(),
    }),
  ),
  total: z.number().int().nonnegative(),
  nextOffset: z.number().int().nonnegative().nullable(),
});

export const JobRetried = z.object({ role: z.string(), jobId: z.string(), state: z.literal('waiting') });

export const AdminTaskView = TaskView.extend({ owner: z.string() });

/** A role name as the registry holds it (the queue is `role.<name>`). */
export const RoleParam = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be a role name')
  .meta({ description: 'A role, as GET /v1/admin/replicas lists it' });

/** A BullMQ job id; subtask jobs are `<taskId>.<subtaskId>`. */
export const JobIdParam = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,200}$/, 'must be a job id')
  .meta({ description: 'A job id, as the failed jobs list names it' });

const queryInteger = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,15}$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const FailedJobQuery = {
  offset: queryInteger(0, 1_000_000)
    .optional()
    .meta({ description: 'Jobs to skip: the previous page’s nextOffset', default: 0 }),
  limit: queryInteger(1, MAX_PAGE_SIZE)
    .optional()
    .meta({ description: `Jobs per page, at most ${MAX_PAGE_SIZE}`, default: 20 }),
};

/** How far back GET /v1/admin/queues/{role}/versions looks by default: a rollout window and then some. */
export const DEFAULT_VERSIONS_WINDOW_MS = 15 * 60_000;

export const VersionsQuery = {
  since: z
    .union([
      z.string().regex(/^[0-9]{1,15}$/, 'must be epoch milliseconds or an ISO 8601 time'),
      z.iso.datetime({ offset: true }),
    ])
    .optional()
    .meta({
      description: `Start of the window: epoch milliseconds or an ISO 8601 time. Default: ${DEFAULT_VERSIONS_WINDOW_MS / 60_000} minutes ago.`,
    }),
};

/** `since` as epoch ms (validated by VersionsQuery), or the default window's start. */
export const sinceMs = (since: string | undefined, now = Date.now()): number =>
  since === undefined ? now - DEFAULT_VERSIONS_WINDOW_MS : /^[0-9]+$/.test(since) ? Number(since) : Date.parse(since);

export const AdminTaskListQuery = {
  owner: TenantId.meta({ description: 'The tenant whose tasks to list (an API key’s name)' }),
  ...TaskListQuery,
};

/** An approval's id, as GET /v1/admin/approvals lists it (`apr-` and 24 hex digits). */
export const ApprovalIdParam = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be an approval id')
  .meta({ description: 'An approval id, as GET /v1/admin/approvals lists it' });

export const ApprovalListQuery = {
  status: ApprovalStatus.optional().meta({
    description: 'Only approvals with this status. Default: all, the pending ones first',
  }),
  offset: FailedJobQuery.offset.meta({ description: 'Approvals to skip: the previous page’s nextOffset', default: 0 }),
  limit: FailedJobQuery.limit.meta({ description: `Approvals per page, at most ${MAX_PAGE_SIZE}`, default: 20 }),
};

export const ApprovalPage = z.object({
  approvals: z.array(Approval),
  total: z.number().int().nonnegative(),
  nextOffset: z.number().int().nonnegative().nullable(),
});

/** POST /v1/admin/approvals/{id}/decision. */
export const ApprovalDecisionBody = z.strictObject({
  decision: z
    .enum(['approve', 'deny'])
    .describe('approve runs the tool call; deny returns approval_denied to the model'),
  reason: text({
    min: 1,
    max: 500,
    trim: true,
    pattern: { regex: NON_BLANK, message: 'must say why (it is audited)' },
  }).describe('Why: audited with the admin key’s name, and shown to the model on a denial'),
});
