import { ApprovalStore } from '@flotilla/runtime';
import type { Processor } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { TaskStore } from '../tasks/store.js';
import { failTask } from './jobs.js';
import type { TaskQueues } from './queues.js';
import { stopTaskWork } from './stop.js';

export interface SweepJobDeps {
  store: TaskStore;
  queues: TaskQueues;
  log: FastifyBaseLogger;
  /** TASK_REQUEUE_AFTER_MS: a task queued this long gets its planning job made sure of. */
  requeueAfterMs: number;
  /** TASK_DEADLINE_GRACE_SECONDS, in ms: an unfinished task this long past its deadline fails. */
  deadlineGraceMs: number;
  /** Tasks looked at per index per sweep; the rest wait for the next sweep. Default 200. */
  batch?: number;
}

export interface SweepJobResult {
  /** Queued tasks whose planning job was missing and has been enqueued. */
  requeued: number;
  /** Tasks failed with reason `deadline`. */
  expired: number;
}

/**
 * The periodic sweep (a BullMQ job scheduler on the sweep queue, see TaskQueues.scheduleSweeps)
 * repairs what no single request or job can:
 *
 * - Accepting a task is two writes, the task (with its index entries) and its planning job, and
 *   BullMQ cannot add a job inside our transaction. A crash between them leaves a task `queued`
 *   with no job; the sweep enqueues planning for tasks queued longer than `requeueAfterMs`.
 * - A task whose workers vanished (killed, or no replica ever took its subtasks) would stay
 *   `running` forever; the sweep fails it (`deadline`) once it is `deadlineGraceMs` past its
 *   deadline, which closes its event streams, and stops its remaining jobs as a cancel does. Time its
 *   subtasks spent waiting for an operator's approval (up to each approval's own deadline) moves its
 *   deadline on: a task is not failed because a person took the time they were given.
 *
 * Every step is idempotent (job ids are task ids, status changes are atomic and conditional), so
 * two sweeps overlapping on two replicas (a slow sweep outlasting the interval) only repeat work.
 */
export function createSweepProcessor(deps: SweepJobDeps): Processor<unknown, SweepJobResult> {
  const batch = deps.batch ?? 200;
  return async () => {
    const now = Date.now();
    return {
      requeued: await requeueStale(deps, now, batch),
      expired: await expireOverdue(deps, now, batch),
    };
  };
}

async function requeueStale(deps: SweepJobDeps, now: number, batch: number): Promise<number> {
  const { store, queues, log } = deps;
  const ids = await store.queuedSince(now - deps.requeueAfterMs, batch);
  const checked: string[] = [];
  let requeued = 0;
  for (const taskId of ids) {
    try {
      const record = await store.get(taskId);
      if (!record) {
        await store.unindex(taskId);
        continue;
      }
      // It left `queued` since the range read; the transition that moved it took it off the index.
      if (record.status !== 'queued') continue;
      if (await queues.ensurePlan(taskId)) {
        requeued++;
        log.warn({ taskId, createdAt: record.createdAt }, 'task was queued without a planning job; enqueued it');
      }
      checked.push(taskId);
    } catch (err) {
      log.warn({ err: { message: (err as Error).message }, taskId }, 'could not check a queued task');
    }
  }
  await store.touchQueued(checked, now);
  return requeued;
}

async function expireOverdue(deps: SweepJobDeps, now: number, batch: number): Promise<number> {
  const { store, queues, log } = deps;
  const graceSeconds = Math.round(deps.deadlineGraceMs / 1000);
  const ids = await store.openPast(now - deps.deadlineGraceMs, batch);
  const approvals = new ApprovalStore(store.redis, store.prefix);
  let expired = 0;
  for (const taskId of ids) {
    try {
      const record = await store.get(taskId);
      if (!record) {
        await store.unindex(taskId);
        continue;
      }
      const waited = await approvals.waitedMs(taskId, now);
      if (waited > 0 && record.deadline + waited + deps.deadlineGraceMs > now) continue;
      const reason = `deadline: still ${record.status} more than ${graceSeconds} s after its deadline (${new Date(record.deadline).toISOString()})`;
      // Not applied: it ended since the range read, and that transition took it off the index.
      if (!(await failTask(store, taskId, reason))) continue;
      expired++;
      log.warn({ taskId, status: record.status, deadline: record.deadline }, 'task failed past its deadline');
      // Should this throw, the task is already off the index and no sweep comes back for it; what it
      // leaves costs little, since a subtask's envelope carries the passed deadline and stops at once.
      await stopTaskWork(store, queues, taskId);
    } catch (err) {
      log.warn({ err: { message: (err as Error).message }, taskId }, 'could not expire a task past its deadline');
    }
  }
  return expired;
}
