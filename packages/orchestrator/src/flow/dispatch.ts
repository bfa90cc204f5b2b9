import { type PlannedSubtask, queueNames, type SubtaskEnvelope, subtaskJobId, Traceparent } from '@flotilla/contracts';
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
 * The BullMQ flow for a plan: one child per subtask on its role's queue, the parent on the
 * aggregate queue, so fan-in runs once every child has ended. A child that fails for good is
 * recorded on the parent instead of blocking it (ignoreDependencyOnFailure), so aggregation
 * runs on what succeeded. Job ids are derived from the task and subtask ids, so adding the same
 * flow twice (a retried planning job) adds nothing new.
 */
export function buildFlow(record: TaskRecord, plan: readonly PlannedSubtask[], options: FlowOptions): FlowJob {
  const now = options.now ?? Date.now();
  const budget = splitBudget(record.limits, plan.length, record.deadline, now);
  const keep = { removeOnComplete: { age: options.keepSeconds }, removeOnFail: { age: options.keepSeconds } };
  return {
    name: 'aggregate',
    queueName: queueNames.aggregate,
    data: { taskId: record.taskId } satisfies TaskJobData,
    opts: { jobId: record.taskId, ...AGGREGATE_RETRY_OPTS, ...keep },
    children: plan.map((s) => {
      const envelope: SubtaskEnvelope = {
        v: 1,
        taskId: record.taskId,
        subtaskId: s.subtaskId,
        role: s.role,
        tenant: record.owner,
        input: s.input,
        budget,
        deadline: record.deadline,
        attempt: 1,
        ...options.trace,
      };
      return {
        name: s.role,
        queueName: queueNames.role(s.role),
        data: envelope,
        opts: {
          jobId: subtaskJobId(record.taskId, s.subtaskId),
          ...RETRY_OPTS,
          ...keep,
          ignoreDependencyOnFailure: true,
        },
      };
    }),
  };
}
