import { z } from 'zod';
import { BudgetLimits, Usage } from './budget.js';
import { StopReason } from './stop-reason.js';
import { TenantId } from './tenant.js';
import { contractVersion } from './version.js';

/** W3C trace-context `traceparent`: version-traceid-spanid-flags. */
export const Traceparent = z.string().regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);

/** One finished subtask's output, handed to a subtask that depends on it. */
export const SubtaskDependency = z.object({
  subtaskId: z.string().min(1),
  role: z.string().min(1),
  output: z.unknown(),
});
export type SubtaskDependency = z.infer<typeof SubtaskDependency>;

/** What travels on a role's queue: one unit of work for one worker. */
export const SubtaskEnvelope = z.object({
  v: contractVersion,
  taskId: z.string().min(1),
  subtaskId: z.string().min(1),
  role: z.string().min(1),
  /**
   * The tenant whose task this is, so per-tenant state (memory) can be scoped by workers. Optional
   * within v1: envelopes queued by an orchestrator older than this field carry none.
   */
  tenant: TenantId.optional(),
  input: z.unknown(),
  budget: BudgetLimits,
  /** Epoch milliseconds after which the work is worthless. */
  deadline: z.number().int().positive(),
  traceparent: Traceparent.optional(),
  tracestate: z.string().max(512).optional(),
  /**
   * The outputs of the subtasks this one depends on (PlannedSubtask.dependsOn), in plan order.
   * Data from other agents, which read web pages: handlers show it to a model as untrusted data.
   */
  dependencies: z.array(SubtaskDependency).max(32).optional(),
  /** PlannedSubtask.retryOf: the failed subtask whose work this one repeats, and whose write keys it uses. */
  retryOf: z.string().min(1).optional(),
  /** 1-based delivery attempt, so handlers can tell a retry from a first run. */
  attempt: z.number().int().positive().default(1),
});
export type SubtaskEnvelope = z.infer<typeof SubtaskEnvelope>;
export type SubtaskEnvelopeInput = z.input<typeof SubtaskEnvelope>;

/**
 * The tenant of an envelope that names none (queued before tenants existed, or a deployment with
 * one client): the orchestrator's DEFAULT_OWNER, so its memory is the one such tasks used.
 */
export const DEFAULT_TENANT = 'default';

export const WorkerIdentity = z.object({
  role: z.string(),
  /** Unique per process: hostname (the container id under Compose) plus pid. */
  replica: z.string(),
  /** Image or package version, so a canary's results can be told apart. */
  version: z.string(),
});
export type WorkerIdentity = z.infer<typeof WorkerIdentity>;

export const SubtaskResult = z.object({
  v: contractVersion,
  taskId: z.string(),
  subtaskId: z.string(),
  ok: z.boolean(),
  output: z.unknown().optional(),
  error: z.string().optional(),
  stopReason: StopReason,
  usage: Usage,
  worker: WorkerIdentity,
  /**
   * Fleet services (`memory`) a tool call found down during the run: the output was made without
   * them. The run may still have finished ok; its task ends partial.
   */
  degraded: z.array(z.string()).optional(),
});
export type SubtaskResult = z.infer<typeof SubtaskResult>;
