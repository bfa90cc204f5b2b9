import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type ApprovalRecord, type ApprovalStore, approvalId, summarizeArguments } from '../approvals/index.js';
import { FlotillaError } from '../errors.js';
import { getMetrics } from '../telemetry/metrics.js';
import { argsHash, type ToolOutcome } from '../tools/index.js';
import { appendTaskEvent } from './events.js';

/** What runs need to ask for approvals: shared by every run of a worker. */
export interface ApprovalDeps {
  store: ApprovalStore;
  /** A command connection, for the task's events. */
  redis: Redis;
  prefix: string;
  /** APPROVAL_TIMEOUT_S in ms: an approval nobody decided on by then is denied (approval_timeout). */
  timeoutMs: number;
}

/**
 * Thrown through the handler when a tool call waits for a person: the processor then parks the
 * job (BullMQ's delayed state) until a decision or the deadline. Not a failure; a handler that
 * catches it cannot carry on regardless, since every later effect of the run throws it again.
 */
export class ApprovalPending extends FlotillaError {
  constructor(readonly approval: ApprovalRecord) {
    super(
      'FLOTILLA_APPROVAL_PENDING',
      `tool ${approval.tool} waits for approval ${approval.id} until ${approval.deadline}`,
    );
  }
}

export interface ApprovalCall {
  taskId: string;
  subtaskId: string;
  role: string;
  tenant: string;
  jobId: string | undefined;
  callIndex: number;
  name: string;
  input: unknown;
  log: Logger;
}

const denied = (stopReason: 'approval_denied' | 'approval_timeout' | 'cancelled', message: string): ToolOutcome => ({
  ok: false,
  stopReason,
  code: stopReason === 'cancelled' ? 'aborted' : stopReason,
  message,
  attempts: 0,
});

/**
 * Where a call that needs approval stands: undefined when it is approved (run it), a failed
 * outcome when it was denied, timed out or its task cancelled (the model sees it as the tool's
 * result), and ApprovalPending thrown while it waits. The approval's id comes from the call's
 * place in the run, so a resumed run meets the record its first part made.
 */
export async function checkApproval(deps: ApprovalDeps, call: ApprovalCall): Promise<ToolOutcome | undefined> {
  const id = approvalId(call.taskId, call.subtaskId, call.callIndex);
  let record = await deps.store.get(id);
  if (!record) {
    const now = Date.now();
    const made = await deps.store.create({
      id,
      taskId: call.taskId,
      subtaskId: call.subtaskId,
      role: call.role,
      tool: call.name,
      summary: summarizeArguments(call.input),
      owner: call.tenant,
      jobId: call.jobId ?? '',
      argsHash: argsHash(call.input),
      requestedAt: now,
      deadline: now + deps.timeoutMs,
    });
    record = made.approval;
    if (made.created) {
      await appendTaskEvent(deps.redis, deps.prefix, {
        type: 'approval_requested',
        taskId: call.taskId,
        subtaskId: call.subtaskId,
        role: call.role,
        approvalId: id,
        tool: call.name,
        summary: record.summary,
        deadline: record.deadline,
        approvers: 'admin',
      });
      getMetrics().approvals.add(1, { tool: call.name, decision: 'requested' });
      call.log.info({ approvalId: id, tool: call.name, deadline: record.deadline }, 'tool call waits for approval');
    }
  }
  if (record.tool !== call.name || (record.argsHash && record.argsHash !== argsHash(call.input))) {
    // The run took another path than the one the approval was asked for: nobody approved this call.
    return denied('approval_denied', `approval ${id} was asked for another call (${record.tool}); not run`);
  }
  if (record.status === 'pending' && Date.parse(record.deadline) <= Date.now()) {
    const now = Date.now();
    const timedOut = await deps.store.decide(id, {
      status: 'timed_out',
      by: 'system',
      reason: 'no decision before the deadline',
      at: now,
      notBefore: now,
    });
    if (timedOut.kind !== 'missing') record = timedOut.approval;
    if (timedOut.kind === 'applied') {
      await appendTaskEvent(deps.redis, deps.prefix, {
        type: 'approval_decided',
        taskId: call.taskId,
        subtaskId: call.subtaskId,
        approvalId: id,
        decision: 'timeout',
        by: 'system',
      });
      getMetrics().approvals.add(1, { tool: call.name, decision: 'timeout' });
    }
  }
  switch (record.status) {
    case 'approved':
      return undefined;
    case 'denied':
      return denied(
        'approval_denied',
        `an operator (${record.decidedBy ?? 'unknown'}) denied this call of ${call.name}: ${record.reason ?? ''}`,
      );
    case 'timed_out':
      return denied('approval_timeout', `nobody approved this call of ${call.name} before ${record.deadline}; not run`);
    case 'cancelled':
      return denied('cancelled', `the task was cancelled while ${call.name} waited for approval`);
    case 'pending':
      throw new ApprovalPending(record);
  }
}
