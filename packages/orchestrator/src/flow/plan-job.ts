import { type RoleInfo, TERMINAL_TASK_STATUSES } from '@flotilla/contracts';
import type { FlowProducer, Processor } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { Planner } from '../planner/planner.js';
import type { TaskStore } from '../tasks/store.js';
import { activeTraceContext, buildFlow } from './dispatch.js';
import { failTask, isLastAttempt, isPermanent, type TaskJobData, taskIdOf } from './jobs.js';
import type { TaskQueues } from './queues.js';

export interface PlanJobDeps {
  store: TaskStore;
  planner: Planner;
  /** Live roles (the registry's listRoles, bound to this prefix). */
  roles: () => Promise<RoleInfo[]>;
  flows: FlowProducer;
  queues: TaskQueues;
  log: FastifyBaseLogger;
}

export type PlanJobResult =
  | { outcome: 'dispatched'; subtasks: number }
  | { outcome: 'failed'; reason: string }
  | { outcome: 'skipped'; status: string };

/**
 * Plans a task and dispatches its flow. Runs on the plan queue so any replica can plan what
 * another accepted, and a crash mid-plan is retried (the stored plan is reused, so the retry
 * dispatches the same subtask ids).
 *
 * Order matters: `running` and the `planned` event are written before the children exist, so an
 * SSE client always sees planned before any subtask event; a cancellation that lands between
 * the transition and the flow (or the deadline sweep failing the task there) is caught by
 * re-reading the status after dispatch.
 */
export function createPlanProcessor(deps: PlanJobDeps): Processor<TaskJobData, PlanJobResult> {
  const { store, planner, flows, queues } = deps;
  return async (job, _token, jobSignal) => {
    const taskId = taskIdOf(job);
    const log = deps.log.child({ taskId, jobId: job.id });

    const record = await store.get(taskId);
    if (!record) return { outcome: 'skipped', status: 'missing' };
    if (record.status === 'queued') {
      await store.transition(taskId, {
        from: ['queued'],
        to: 'planning',
        event: { type: 'status', taskId, status: 'planning' },
      });
    } else if (record.status !== 'planning' && record.status !== 'running') {
      return { outcome: 'skipped', status: record.status };
    }

    try {
      let plan = record.plan;
      if (plan.length === 0) {
        const timeLeft = record.deadline - Date.now();
        if (timeLeft <= 0) {
          const reason = 'max_seconds: the task deadline passed before planning';
          await failTask(store, taskId, reason);
          return { outcome: 'failed', reason };
        }
        const deadline = AbortSignal.timeout(timeLeft);
        const signal = jobSignal ? AbortSignal.any([deadline, jobSignal]) : deadline;
        const outcome = await planner.plan(record.goal, await deps.roles(), { signal }).catch((err: unknown) => {
          if (deadline.aborted)
            return { ok: false as const, reason: 'max_seconds: the task deadline passed while planning', tokens: 0 };
          throw err;
        });
        const tokens = store.addOrchestratorTokens(taskId, outcome.tokens);
        if (!outcome.ok) {
          await Promise.all([tokens, failTask(store, taskId, outcome.reason)]);
          log.warn({ reason: outcome.reason }, 'planning failed');
          return { outcome: 'failed', reason: outcome.reason };
        }
        if (outcome.repaired) log.info('plan repaired after one invalid attempt');
        // Side by side, one round trip: the tokens are bookkeeping, and one connection keeps their order.
        [, plan] = await Promise.all([tokens, store.savePlan(taskId, outcome.subtasks)]);
      }

      const t = await store.transition(taskId, {
        from: ['planning'],
        to: 'running',
        event: { type: 'planned', taskId, subtasks: plan },
      });
      if (!t.applied && t.status !== 'running') return { outcome: 'skipped', status: t.status ?? 'missing' };

      // The flow needs only what planning does not change (ids, limits, deadline): no second read.
      await flows.add(buildFlow(record, plan, { keepSeconds: store.ttlSeconds, trace: activeTraceContext() }));
      const after = await store.get(taskId);
      if (after && TERMINAL_TASK_STATUSES.includes(after.status)) await queues.removeUnstarted(after);
      log.info({ subtasks: plan.length, roles: [...new Set(plan.map((p) => p.role))] }, 'task dispatched');
      return { outcome: 'dispatched', subtasks: plan.length };
    } catch (err) {
      if (isPermanent(err) || isLastAttempt(job)) {
        const reason = `planning_error: ${err instanceof Error ? err.message : String(err)}`;
        await failTask(store, taskId, reason);
        log.error({ err }, 'planning failed for good');
        return { outcome: 'failed', reason };
      }
      throw err;
    }
  };
}
