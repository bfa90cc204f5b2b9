import {
  type PlannedSubtask,
  queueNames,
  type SubtaskDependency,
  type SubtaskEnvelope,
  subtaskJobId,
  Traceparent,
} from '@flotilla/contracts';
import { context, propagation } from '@opentelemetry/api';
import type { FlowJob } from 'bullmq';
import { splitBudget } from '../tasks/budget.js';
import type { TaskRecord } from '../tasks/record.js';
import { AGGREGATE_RETRY_OPTS, RETRY_OPTS, type TaskJobData } from './jobs.js';

/** The W3C trace context of the active span, for envelopes (workers without bullmq-otel still join the trace). */
export function activeTraceContext(): { traceparent?: string; tracestate?: string } {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  const out: { traceparent?: string; tracestate?: string } = {};
  if (carrier.traceparent && Traceparent.safeParse(carrier.traceparent).success) out.traceparent = carrier.traceparent;
  if (carrier.tracestate) out.tracestate = carrier.tracestate.slice(0, 512);
  return out;
}

export interface FlowOptions {
  /** How long finished jobs stay inspectable; the task's own TTL is a good value. */
  keepSeconds: number;
  now?: number;
  trace?: { traceparent?: string; tracestate?: string };
}

/**
 * The job for one subtask on its role's queue, as a child of the task's aggregation job. Its id is
 * derived from the task and subtask ids, so adding it twice (a retried planning or aggregation job)
 * adds nothing new. A child that fails for good is recorded on the parent instead of blocking it
 * (ignoreDependencyOnFailure), so aggregation runs on what succeeded.
 */
export function subtaskJob(
  record: TaskRecord,
  plan: readonly PlannedSubtask[],
  subtask: PlannedSubtask,
  options: FlowOptions,
  dependencies?: SubtaskDependency[],
): FlowJob {
  const now = options.now ?? Date.now();
  const envelope: SubtaskEnvelope = {
    v: 1,
    taskId: record.taskId,
    subtaskId: subtask.subtaskId,
    role: subtask.role,
    tenant: record.owner,
    input: subtask.input,
    budget: splitBudget(record.limits, plan.length, record.deadline, now),
    deadline: record.deadline,
    attempt: 1,
    ...(dependencies?.length ? { dependencies } : {}),
    ...(subtask.retryOf ? { retryOf: subtask.retryOf } : {}),
    ...options.trace,
  };
  return {
    name: subtask.role,
    queueName: queueNames.role(subtask.role),
    data: envelope,
    opts: {
      jobId: subtaskJobId(record.taskId, subtask.subtaskId),
      ...RETRY_OPTS,
      ...keepFor(options.keepSeconds),
      ignoreDependencyOnFailure: true,
    },
  };
}

function keepFor(seconds: number) {
  return { removeOnComplete: { age: seconds }, removeOnFail: { age: seconds } };
}

/**
 * The BullMQ flow for a plan: the parent on the aggregate queue, so fan-in runs once every child
 * has ended, and one child per subtask that depends on no other. The aggregation job dispatches
 * the subtasks that depend on others once their dependencies have ended (dispatchDependents).
 */
export function buildFlow(record: TaskRecord, plan: readonly PlannedSubtask[], options: FlowOptions): FlowJob {
  return {
    name: 'aggregate',
    queueName: queueNames.aggregate,
    data: { taskId: record.taskId } satisfies TaskJobData,
    opts: { jobId: record.taskId, ...AGGREGATE_RETRY_OPTS, ...keepFor(options.keepSeconds) },
    children: plan.filter((s) => !s.dependsOn?.length).map((s) => subtaskJob(record, plan, s, options)),
  };
}
