import {
  type QueueStats,
  queueNames,
  type RoleReplicas,
  redisKeys,
  type TaskPage,
  type TaskView,
  type VersionFiguresList,
} from '@flotilla/contracts';
import {
  type KillSwitchChange,
  type KillSwitchRecord,
  type KillSwitchState,
  OPERATOR_ACTIONS_MAX_LEN,
  readKillSwitchRecord,
  setKillSwitch,
} from '@flotilla/runtime';
import { listReplicas, readVersionFigures } from '@flotilla/runtime/worker';
import { metrics, type ObservableGauge, type ObservableResult } from '@opentelemetry/api';
import { Job, Queue } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { ConflictError, NotFoundError } from '../errors.js';
import type { TaskListOptions, TaskStore } from '../tasks/store.js';
import { ApprovalDesk } from './approvals.js';

export interface FailedJob {
  jobId: string;
  /** Why its last attempt failed, as BullMQ recorded it. */
  failedReason: string;
  attemptsMade: number;
  failedAt: string | null;
  taskId: string | null;
  subtaskId: string | null;
}

export interface FailedJobPage {
  jobs: FailedJob[];
  total: number;
  nextOffset: number | null;
}

export interface OperatorServiceOptions {
  /** Commands connection: the kill switch, the registry, the operator actions stream. */
  redis: Redis;
  /** BullMQ's connection, for the role queues it reads (shared, not closed here). */
  connection: Redis;
  prefix: string;
  store: TaskStore;
  log: FastifyBaseLogger;
  /** ROLE_STALE_AFTER_MS: a replica with an older heartbeat is reported not live. Default 15000. */
  staleAfterMs?: number;
}

/** How many of the latest completed jobs p50/p95 are computed from: recent, and one Redis round. */
export const JOB_TIME_SAMPLE = 100;
/** Minutes of BullMQ's per-minute throughput reported. */
export const RECENT_MINUTES = 15;

/** The value at quantile q of ascending `sorted` (nearest rank). */
export const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;

/**
 * What an operator does to the fleet, independent of HTTP: the kill switch (with who and why, audited
 * and measured), the registry's replicas, the role queues (BullMQ's own counts and metrics), failed
 * jobs and their retry, and any tenant's tasks. Errors it throws are ProblemErrors the API renders.
 */
export class OperatorService {
  private readonly queues = new Map<string, Queue>();
  private readonly keys;
  private readonly changes;
  private readonly gauge: ObservableGauge;
  private readonly observe = async (result: ObservableResult) => {
    // Redis down: no reading beats a stale one; /metrics still answers with the rest.
    const state = await readKillSwitchRecord(this.options.redis, this.options.prefix).catch(() => undefined);
    if (!state) return;
    result.observe(state.global ? 1 : 0, { scope: 'global' });
    result.observe(state.noWrites ? 1 : 0, { scope: 'no_writes' });
    result.observe(state.tools.length, { scope: 'tools' });
  };
  private closed = false;
  /** Approvals: tool calls waiting for an operator's decision. */
  readonly approvals: ApprovalDesk;

  constructor(private readonly options: OperatorServiceOptions) {
    this.keys = redisKeys(options.prefix);
    this.approvals = new ApprovalDesk({
      redis: options.redis,
      prefix: options.prefix,
      queue: (role) => this.queue(role),
      log: options.log,
    });
    const meter = metrics.getMeter('flotilla');
    this.changes = meter.createCounter('flotilla_operator_actions', {
      description: 'Operator actions through the API, by action (kill_switch | retry_job)',
    });
    this.gauge = meter.createObservableGauge('flotilla_kill_switch', {
      description: 'The shared kill switch: global and no_writes 1 when on, tools the number of tool globs stopped',
    });
    this.gauge.addCallback(this.observe);
  }

  killSwitch(): Promise<KillSwitchRecord> {
    return readKillSwitchRecord(this.options.redis, this.options.prefix);
  }

  /**
   * Changes the fleet's kill switch. The state, who and why, and the operator action record are
   * written in one MULTI with the announcement, so every replica re-reads it at once (the runtime's
   * KillSwitch subscribes) and no change exists without its record.
   */
  async setKillSwitch(patch: Partial<KillSwitchState>, change: KillSwitchChange): Promise<KillSwitchRecord> {
    const state = await setKillSwitch(this.options.redis, this.options.prefix, patch, change);
    this.changes.add(1, { action: 'kill_switch' });
    // The audit line: who, why, what changed and the state it left. The reason is the operator's own text.
    this.options.log.warn(
      { audit: 'operator', action: 'kill_switch', by: change.by, reason: change.reason, patch, killSwitch: state },
      'operator changed the kill switch',
    );
    return state;
  }

  replicas(): Promise<RoleReplicas[]> {
    return listReplicas(this.options.redis, this.options.prefix, { staleAfterMs: this.options.staleAfterMs });
  }

  /** Every registered role's queue: BullMQ's job counts and metrics, and job times of recent completions. */
  async queueStats(): Promise<QueueStats[]> {
    const roles = (await this.options.redis.smembers(this.keys.roles)).sort();
    return Promise.all(
      roles.map(async (role) => {
        const queue = this.queue(role);
        const [counts, completedMetrics, failedMetrics, recent] = await Promise.all([
          queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed'),
          queue.getMetrics('completed', 0, RECENT_MINUTES - 1),
          queue.getMetrics('failed', 0, RECENT_MINUTES - 1),
          queue.getCompleted(0, JOB_TIME_SAMPLE - 1),
        ]);
        const times = recent
          .flatMap((j) => (j.processedOn && j.finishedOn ? [j.finishedOn - j.processedOn] : []))
          .sort((a, b) => a - b);
        return {
          role,
          waiting: counts.waiting ?? 0,
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          failed: counts.failed ?? 0,
          completed: counts.completed ?? 0,
          throughput: {
            completedTotal: completedMetrics.meta.count,
            failedTotal: failedMetrics.meta.count,
            completedPerMinute: completedMetrics.data.map(Number),
            failedPerMinute: failedMetrics.data.map(Number),
          },
          jobMs: times.length ? { p50: quantile(times, 0.5), p95: quantile(times, 0.95), sample: times.length } : null,
        };
      }),
    );
  }

  /**
   * Per image version, how the role's job attempts ended since `since` (epoch ms): attempts, errors
   * (a thrown attempt or a runtime_error/tool_error stop), error rate, p50/p95 ms, replicas. What a
   * canary rollout compares; workers write it (the role's outcomes stream), this only reads.
   */
  async versionFigures(role: string, since: number): Promise<VersionFiguresList> {
    await this.knownQueue(role);
    const versions = await readVersionFigures(this.options.redis, this.options.prefix, role, since);
    return { role, since: new Date(since).toISOString(), versions };
  }

  /** A role's failed jobs, newest first, with the reason each failed. */
  async failedJobs(role: string, { offset, limit }: { offset: number; limit: number }): Promise<FailedJobPage> {
    const queue = await this.knownQueue(role);
    const [jobs, total] = await Promise.all([queue.getFailed(offset, offset + limit - 1), queue.getFailedCount()]);
    const data = (j: Job, key: string) => {
      const v = (j.data as Record<string, unknown> | undefined)?.[key];
      return typeof v === 'string' ? v : null;
    };
    return {
      jobs: jobs.map((j) => ({
        jobId: String(j.id),
        failedReason: j.failedReason ?? '',
        attemptsMade: j.attemptsMade,
        failedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
        taskId: data(j, 'taskId'),
        subtaskId: data(j, 'subtaskId'),
      })),
      total,
      nextOffset: offset + jobs.length < total && jobs.length > 0 ? offset + jobs.length : null,
    };
  }

  /**
   * Moves a failed job back to waiting with its attempts reset, so it gets the retries a new job
   * would (a job that failed for good used them all). Audited like a kill switch change.
   */
  async retryJob(role: string, jobId: string, by: string): Promise<{ role: string; jobId: string; state: 'waiting' }> {
    const queue = await this.knownQueue(role);
    const job = await Job.fromId(queue, jobId);
    if (!job) throw new NotFoundError(`no job ${jobId} in the ${role} queue (or it expired)`);
    const state = await job.getState();
    if (state !== 'failed')
      throw new ConflictError('FLOTILLA_JOB_NOT_FAILED', `job ${jobId} is ${state}; only a failed job can be retried`);
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    const at = new Date().toISOString();
    await this.options.redis.xadd(
      this.keys.operatorActions,
      'MAXLEN',
      '~',
      OPERATOR_ACTIONS_MAX_LEN,
      '*',
      'action',
      'retry_job',
      'by',
      by,
      'role',
      role,
      'jobId',
      jobId,
      'at',
      at,
    );
    this.changes.add(1, { action: 'retry_job' });
    this.options.log.warn({ audit: 'operator', action: 'retry_job', by, role, jobId }, 'operator retried a job');
    return { role, jobId, state: 'waiting' };
  }

  /** Any tenant's tasks, newest first (the tenant's own listing, read by the operator). */
  listTasks(owner: string, options: TaskListOptions): Promise<TaskPage> {
    return this.options.store.list(owner, options);
  }

  /** Any task, whoever owns it, with its owner. */
  async getTask(taskId: string): Promise<TaskView & { owner: string }> {
    const record = await this.options.store.get(taskId);
    const view = record && (await this.options.store.view(taskId));
    if (!record || !view) throw new NotFoundError(`task ${taskId} does not exist (or expired)`);
    return { ...view, owner: record.owner };
  }

  /** Stops observing the gauge and closes the queues it opened (not the shared connections). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.gauge.removeCallback(this.observe);
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }

  private queue(role: string): Queue {
    let q = this.queues.get(role);
    if (!q) {
      q = new Queue(queueNames.role(role), { connection: this.options.connection, prefix: this.options.prefix });
      q.on('error', (err) => this.options.log.warn({ err: { message: err.message }, role }, 'queue error'));
      this.queues.set(role, q);
    }
    return q;
  }

  /** The role's queue; a role that never registered is a 404 rather than an empty queue made up. */
  private async knownQueue(role: string): Promise<Queue> {
    if (!(await this.options.redis.sismember(this.keys.roles, role)))
      throw new NotFoundError(`no role ${role} has registered`);
    return this.queue(role);
  }
}
