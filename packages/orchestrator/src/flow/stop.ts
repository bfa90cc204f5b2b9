import { ApprovalStore, cancelTaskApprovals } from '@flotilla/runtime';
import { publishCancellation } from '@flotilla/runtime/worker';
import type { TaskStore } from '../tasks/store.js';
import type { TaskQueues } from './queues.js';

/**
 * Stops the work of a task that has just ended without its subtasks (cancelled, or failed past its
 * deadline): jobs nobody took are removed and running subtasks are told to stop.
 *
 * Order matters. The cancelled key first (then the task's pending approvals are cancelled), so a worker taking a job from now on stops at once; then
 * the jobs nobody took are removed, before the abort frees busy workers to take them; then the
 * message that aborts the running ones. The record is read after the status changed, so a plan
 * stored just before is included (the planner re-checks the status after dispatching, for a plan
 * stored just after).
 */
export async function stopTaskWork(store: TaskStore, queues: TaskQueues, taskId: string): Promise<void> {
  await store.redis.set(store.keys.cancelled(taskId), '1', 'EX', store.ttlSeconds);
  // A subtask parked for an approval is a delayed job, removed below with the others; its approval
  // leaves the pending list here, so no operator is asked about a task that is over.
  await cancelTaskApprovals(new ApprovalStore(store.redis, store.prefix), store.redis, store.prefix, taskId);
  const record = await store.get(taskId);
  if (record) await queues.removeUnstarted(record);
  await publishCancellation(store.redis, store.prefix, taskId, store.ttlSeconds);
}
