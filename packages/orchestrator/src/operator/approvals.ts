import { type Approval, type ApprovalStatus, redisKeys } from '@flotilla/contracts';
import {
  type ApprovalPage,
  type ApprovalRecord,
  ApprovalStore,
  getMetrics,
  OPERATOR_ACTIONS_MAX_LEN,
  toApproval,
} from '@flotilla/runtime';
import { appendTaskEvent } from '@flotilla/runtime/worker';
import { Job, type Queue } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { ConflictError, NotFoundError } from '../errors.js';

export interface ApprovalDeskOptions {
  /** Commands connection: approvals, the task's events, the operator actions stream. */
  redis: Redis;
  prefix: string;
  /** A role's queue, where a parked subtask's job waits (delayed). */
  queue: (role: string) => Queue;
  log: FastifyBaseLogger;
}

/** What an operator answers. */
export type ApprovalAnswer = 'approve' | 'deny';

/**
 * The operator's side of approvals (the worker's is the runtime's approval gate): list and read
 * them, and decide. A decision is one Lua script (the first decision wins, every later one is a
 * 409 saying who decided what), then the parked job is promoted so whichever replica is free
 * resumes it at once; being one BullMQ job, it resumes exactly once. Audited like kill switch changes.
 */
export class ApprovalDesk {
  readonly store: ApprovalStore;
  readonly #keys;

  constructor(private readonly options: ApprovalDeskOptions) {
    this.store = new ApprovalStore(options.redis, options.prefix);
    this.#keys = redisKeys(options.prefix);
  }

  list(options: { status?: ApprovalStatus; offset: number; limit: number }): Promise<ApprovalPage> {
    return this.store.list(options);
  }

  async get(id: string): Promise<Approval> {
    const record = await this.store.get(id);
    if (!record) throw new NotFoundError(`approval ${id} does not exist (or expired)`);
    return toApproval(record);
  }

  async decide(id: string, answer: ApprovalAnswer, reason: string, by: string): Promise<Approval> {
    const status = answer === 'approve' ? 'approved' : 'denied';
    const result = await this.store.decide(id, { status, by, reason });
    if (result.kind === 'missing') throw new NotFoundError(`approval ${id} does not exist (or expired)`);
    if (result.kind === 'already') {
      const a = result.approval;
      const who = a.decidedBy === 'system' ? 'the system' : (a.decidedBy ?? 'someone');
      throw new ConflictError(
        'FLOTILLA_APPROVAL_DECIDED',
        `approval ${id} is already ${a.status.replace('_', ' ')}: ${who} decided at ${a.decidedAt ?? 'an unknown time'} (${a.reason ?? 'no reason'})`,
      );
    }
    const approval = result.approval;
    await this.#resume(approval);
    await appendTaskEvent(this.options.redis, this.options.prefix, {
      type: 'approval_decided',
      taskId: approval.taskId,
      subtaskId: approval.subtaskId,
      approvalId: id,
      decision: answer,
      by,
    });
    await this.options.redis.xadd(
      this.#keys.operatorActions,
      'MAXLEN',
      '~',
      OPERATOR_ACTIONS_MAX_LEN,
      '*',
      'action',
      'approval',
      'by',
      by,
      'reason',
      reason,
      'approvalId',
      id,
      'decision',
      answer,
      'tool',
      approval.tool,
      'taskId',
      approval.taskId,
      'at',
      approval.decidedAt ?? new Date().toISOString(),
    );
    getMetrics().approvals.add(1, { tool: approval.tool, decision: answer });
    this.options.log.warn(
      { audit: 'operator', action: 'approval', by, reason, approvalId: id, decision: answer, tool: approval.tool },
      `operator ${answer === 'approve' ? 'approved' : 'denied'} a tool call`,
    );
    return toApproval(approval);
  }

  /**
   * Promotes the parked job so a replica takes it now rather than at the deadline. A job not
   * (yet) delayed needs nothing: the worker parking it looks at the approval once it is delayed.
   */
  async #resume(approval: ApprovalRecord): Promise<void> {
    if (!approval.jobId) return;
    try {
      const job = await Job.fromId(this.options.queue(approval.role), approval.jobId);
      if (job && (await job.isDelayed())) await job.promote();
    } catch (err) {
      // Raced with the worker (it took the job, or removed it): it meets the decision when it runs.
      this.options.log.info(
        { err: { message: (err as Error).message }, approvalId: approval.id, jobId: approval.jobId },
        'parked job not promoted',
      );
    }
  }
}
