import { ApprovalStore, cancelTaskApprovals } from '@flotilla/runtime';
import { publishCancellation } from '@flotilla/runtime/worker';
import { Job } from 'bullmq';
import type { TaskStore } from '../tasks/store.js';
import type { TaskQueues } from './queues.js';

/**
 * Stops the work of a task that has just ended without its subtasks (cancelled, or failed past its
 * deadline): jobs nobody took are removed and running subtasks are told to stop.
 *
 * A subtask parked for an approval (a delayed job whose run has started) is not removed: its approval
 * is cancelled and its job promoted, so a replica resumes it at once, finds the task cancelled and
 * ends the run as a cancelled one (its subtask_finished event, with the usage it had).
 *
 * Order matters. The cancelled key first, so a worker taking a job from now on stops at once; then
 * the jobs nobody took are removed, before the abort frees busy workers to take them; then the
 * message that aborts the running ones. The record is read after the status changed, so a plan
 * stored just before is included (the planner re-checks the status after dispatching, for a plan
 * stored just after).
 */
export async function stopTaskWork(store: TaskStore, queues: TaskQueues, taskId: string): Promise<void> {
  await store.redis.set(store.keys.cancelled(taskId), '1', 'EX', store.ttlSeconds);
  const parked = await cancelTaskApprovals(
    new ApprovalStore(store.redis, store.prefix),
    store.redis,
    store.prefix,
    taskId,
  );
  await Promise.all(
    parked.map(async ({ role, jobId }) => {
      const job = await Job.fromId(queues.role(role), jobId);
      // Not delayed: its run is going on (or was just promoted), and meets the cancellation itself.
      if (job && (await job.isDelayed())) await job.promote().catch(() => {});
    }),
  );
  const record = await store.get(taskId);
  if (record) await queues.removeUnstarted(record, new Set(parked.map((a) => a.jobId)));
  await publishCancellation(store.redis, store.prefix, taskId, store.ttlSeconds);
}
