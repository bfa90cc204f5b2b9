import type { Redis } from 'ioredis';
import { getMetrics } from '../telemetry/metrics.js';
import { appendTaskEvent } from '../worker/events.js';
import type { ApprovalRecord, ApprovalStore } from './store.js';

/**
 * Cancels a task's pending approvals when the task ends without them (a cancel, or its deadline):
 * they leave the pending list with an approval_decided event, and a parked run that still resumes
 * finds its call cancelled. Returns the approvals it cancelled, whose jobs the caller may remove or promote.
 */
export async function cancelTaskApprovals(
  store: ApprovalStore,
  redis: Redis,
  prefix: string,
  taskId: string,
): Promise<ApprovalRecord[]> {
  const cancelled: ApprovalRecord[] = [];
  for (const pending of await store.pendingOfTask(taskId)) {
    const result = await store.decide(pending.id, {
      status: 'cancelled',
      by: 'system',
      reason: 'the task ended before a decision',
    });
    if (result.kind !== 'applied') continue;
    cancelled.push(result.approval);
    getMetrics().approvals.add(1, { tool: pending.tool, decision: 'cancel' });
    await appendTaskEvent(redis, prefix, {
      type: 'approval_decided',
      taskId,
      subtaskId: pending.subtaskId,
      approvalId: pending.id,
      decision: 'cancel',
      by: 'system',
    });
  }
  return cancelled;
}
