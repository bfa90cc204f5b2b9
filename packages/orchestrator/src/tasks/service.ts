import { randomUUID } from 'node:crypto';
import type { BudgetLimits, TaskPage, TaskRequest, TaskView } from '@flotilla/contracts';
import { tightenLimits, withSpan } from '@flotilla/runtime';
import { isSpanContextValid } from '@opentelemetry/api';
import { ConflictError, NotFoundError } from '../errors.js';
import type { TaskQueues } from '../flow/queues.js';
import { stopTaskWork } from '../flow/stop.js';
import type { TaskRecord } from './record.js';
import type { TaskListOptions, TaskStore } from './store.js';

export interface TaskServiceOptions {
  store: TaskStore;
  queues: TaskQueues;
  /** The orchestrator's own limits (AGENT_MAX_*); a task's budget can only tighten them. */
  limits: BudgetLimits;
}

export interface Submitted {
  record: TaskRecord;
  /** False when an idempotency key replayed an earlier, identical request. */
  created: boolean;
}

const notFound = (taskId: string) => new NotFoundError(`task ${taskId} does not exist (or expired)`);

/**
 * What the HTTP API does to tasks, independent of HTTP: submit (idempotently), read, cancel.
 * Errors it throws are ProblemErrors the API renders as-is.
 */
export class TaskService {
  constructor(private readonly options: TaskServiceOptions) {}

  get store(): TaskStore {
    return this.options.store;
  }

  /**
   * Accepts a task. The same idempotency key (body field or Idempotency-Key header) always names
   * the same task: an identical replay returns it (created: false) without new work; a different
   * request under a used key is a 409, since silently returning the old task would hide the change.
   * A header and a body key that differ are a 409 too: each is valid alone, the pair is contradictory
   * (a 422 would claim the body breaks its schema, which it doesn't).
   */
  async submit(request: TaskRequest, headerKey: string | undefined, owner: string): Promise<Submitted> {
    if (request.idempotencyKey && headerKey && request.idempotencyKey !== headerKey) {
      throw new ConflictError(
        'FLOTILLA_IDEMPOTENCY_CONFLICT',
        'the Idempotency-Key header and the body field idempotencyKey differ; send one, or make them equal',
        [{ field: 'idempotencyKey', message: 'differs from the Idempotency-Key header' }],
      );
    }
    const idempotencyKey = request.idempotencyKey ?? headerKey;
    return withSpan('task submit', {}, async (span) => {
      const limits = tightenLimits(this.options.limits, request.budget);
      const ctx = span.spanContext();
      const outcome = await this.options.store.create({
        taskId: randomUUID(),
        request,
        idempotencyKey,
        limits,
        deadline: Date.now() + limits.maxSeconds * 1000,
        traceId: isSpanContextValid(ctx) ? ctx.traceId : undefined,
        owner,
      });
      span.setAttribute('flotilla.task_id', outcome.record.taskId);
      if (!outcome.created && !outcome.sameRequest) {
        throw new ConflictError(
          'FLOTILLA_IDEMPOTENCY_CONFLICT',
          // No task id: the caller sent a different request, so the id is of no use to it, and a
          // conflict that named ids would turn idempotency keys into a way of probing for tasks.
          `idempotency key ${JSON.stringify(idempotencyKey)} was already used for a different request`,
          [{ field: 'idempotencyKey', message: 'already used for a different request' }],
        );
      }
      // A replay of a task still queued re-enqueues planning: a no-op when the job exists (its id
      // is the task id), and the repair when the first request died between the two writes.
      if (outcome.created || outcome.record.status === 'queued')
        await this.options.queues.enqueuePlan(outcome.record.taskId);
      return { record: outcome.record, created: outcome.created };
    });
  }

  /** An owner's tasks, newest first, a page at a time. */
  async list(owner: string, options: TaskListOptions): Promise<TaskPage> {
    return this.options.store.list(owner, options);
  }

  /** A task of `owner`'s; another tenant's task is a NotFoundError, the same as a missing one. */
  async get(taskId: string, owner: string): Promise<TaskView> {
    const view = await this.options.store.view(taskId, owner);
    if (!view) throw notFound(taskId);
    return view;
  }

  /**
   * Cancels a task: status cancelled (with its event) in one step, then jobs nobody took yet are
   * removed, then every replica is told (running subtasks see their AbortSignal fire).
   * Cancelling a cancelled task is a no-op; a completed or failed one is a 409.
   */
  async cancel(taskId: string, owner: string): Promise<TaskView> {
    const { store, queues } = this.options;
    // The owner never changes, so checking it before the (atomic) transition leaves no gap.
    if ((await store.get(taskId))?.owner !== owner) throw notFound(taskId);
    const t = await store.transition(taskId, {
      from: ['queued', 'planning', 'running', 'aggregating'],
      to: 'cancelled',
      event: { type: 'cancelled', taskId },
    });
    if (t.status === undefined) throw notFound(taskId);
    if (!t.applied && t.status !== 'cancelled') {
      throw new ConflictError(
        'FLOTILLA_TASK_FINISHED',
        `task ${taskId} already ${t.status}; only unfinished tasks can be cancelled`,
      );
    }
    await stopTaskWork(store, queues, taskId);
    return this.get(taskId, owner);
  }
}
