import { queueNames, subtaskJobId } from '@flotilla/contracts';
import { Queue, type QueueOptions } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { TaskRecord } from '../tasks/record.js';
import { RETRY_OPTS, type TaskJobData } from './jobs.js';

/** Job states no worker holds yet; anything else is running or has ended. */
const UNSTARTED = new Set<string>(['waiting', 'delayed', 'prioritized', 'paused', 'wait']);

/** The one job scheduler on the sweep queue; every replica upserts the same id, so there is one schedule. */
const SWEEP_SCHEDULER_ID = 'sweep';
const MEMORY_CLEANUP_SCHEDULER_ID = 'memory-cleanup';

/**
 * The queues the orchestrator adds to or removes from: planning, the sweep, and each role's queue
 * (opened on first use, for cancellations). One BullMQ connection serves them all: none of them blocks.
 */
export class TaskQueues {
  readonly plan: Queue<TaskJobData>;
  readonly sweep: Queue;
  readonly memoryCleanup: Queue;
  readonly #roles = new Map<string, Queue>();
  #closing: Promise<void> | undefined;

  constructor(
    private readonly options: Pick<QueueOptions, 'connection' | 'prefix' | 'telemetry'>,
    private readonly keepSeconds: number,
    private readonly log: FastifyBaseLogger,
  ) {
    this.plan = new Queue<TaskJobData>(queueNames.plan, options);
    this.plan.on('error', (err) => log.warn({ err: { message: err.message } }, 'plan queue error'));
    this.sweep = new Queue(queueNames.sweep, options);
    this.sweep.on('error', (err) => log.warn({ err: { message: err.message } }, 'sweep queue error'));
    this.memoryCleanup = new Queue(queueNames.memoryCleanup, options);
    this.memoryCleanup.on('error', (err) => log.warn({ err: { message: err.message } }, 'memory cleanup queue error'));
  }

  /** Enqueues planning; the job id is the task id, so a replayed request cannot plan twice. */
  async enqueuePlan(taskId: string): Promise<void> {
    await this.plan.add(
      'plan',
      { taskId },
      {
        jobId: taskId,
        ...RETRY_OPTS,
        removeOnComplete: { age: this.keepSeconds },
        removeOnFail: { age: this.keepSeconds },
      },
    );
  }

  /**
   * Enqueues planning unless the task's planning job exists (in any state); true when it was missing.
   * What the sweep calls for a task left `queued`: the job is usually there, only waiting its turn.
   */
  async ensurePlan(taskId: string): Promise<boolean> {
    if (await this.plan.getJob(taskId)) return false;
    await this.enqueuePlan(taskId);
    return true;
  }

  /**
   * Makes the sweep run every `everyMs` on whichever replica's sweep worker takes the job: a BullMQ
   * job scheduler keeps one next run at a time in Redis and adds the following one when a worker
   * starts the current run, so the schedule survives restarts and is shared by every replica.
   * Upserting the same id again (each replica at start) replaces the schedule rather than adding one.
   */
  async scheduleSweeps(everyMs: number): Promise<void> {
    await this.sweep.upsertJobScheduler(
      SWEEP_SCHEDULER_ID,
      { every: everyMs },
      // One try: the next run comes soon anyway. A few failures stay inspectable on the dashboard.
      { name: 'sweep', opts: { attempts: 1, removeOnComplete: true, removeOnFail: { count: 50 } } },
    );
  }

  /**
   * Makes the memory cleanup run every `everyMs`, as scheduleSweeps does for the sweep, on a queue
   * whose global concurrency is 1: BullMQ then lets one worker in the fleet run it at a time, even
   * when a run outlasts the interval and the next one is already due.
   */
  async scheduleMemoryCleanup(everyMs: number): Promise<void> {
    await this.memoryCleanup.setGlobalConcurrency(1);
    await this.memoryCleanup.upsertJobScheduler(
      MEMORY_CLEANUP_SCHEDULER_ID,
      { every: everyMs },
      { name: 'memory-cleanup', opts: { attempts: 1, removeOnComplete: true, removeOnFail: { count: 50 } } },
    );
  }

  role(role: string): Queue {
    let q = this.#roles.get(role);
    if (!q) {
      q = new Queue(queueNames.role(role), this.options);
      q.on('error', (err) => this.log.warn({ err: { message: err.message }, role }, 'role queue error'));
      this.#roles.set(role, q);
    }
    return q;
  }

  /**
   * Removes the task's jobs no worker has taken yet: the planning job and waiting (or delayed)
   * subtasks. Running subtasks stay locked and are stopped by the cancellation message instead.
   * Removing a flow child releases its parent once nothing else is pending, so aggregation still
   * runs (and sees the cancelled status). Jobs in `keep` (parked subtasks, promoted so that their
   * run ends itself as cancelled) are left alone.
   */
  async removeUnstarted(
    record: TaskRecord,
    keep: ReadonlySet<string> = new Set(),
  ): Promise<{ removed: string[]; running: string[] }> {
    const removed: string[] = [];
    const running: string[] = [];
    const attempt = async (queue: Queue, jobId: string) => {
      if (keep.has(jobId)) {
        running.push(jobId);
        return;
      }
      try {
        const job = await queue.getJob(jobId);
        if (!job) return;
        const state = await job.getState();
        if (state === 'active') running.push(jobId);
        if (!UNSTARTED.has(state)) return;
        if ((await queue.remove(jobId)) === 1) removed.push(jobId);
        else running.push(jobId);
      } catch (err) {
        this.log.warn({ err: { message: (err as Error).message }, jobId }, 'could not remove job');
        running.push(jobId);
      }
    };
    await attempt(this.plan, record.taskId);
    await Promise.all(record.plan.map((s) => attempt(this.role(s.role), subtaskJobId(record.taskId, s.subtaskId))));
    return { removed, running };
  }

  close(): Promise<void> {
    this.#closing ??= Promise.allSettled([
      this.plan.close(),
      this.sweep.close(),
      this.memoryCleanup.close(),
      ...[...this.#roles.values()].map((q) => q.close()),
    ]).then(() => undefined);
    return this.#closing;
  }
}
