import { createHash } from 'node:crypto';
import {
  type BudgetLimits,
  encodeTaskEvent,
  type PlannedSubtask,
  type RedisKeys,
  redisKeys,
  type TaskEvent,
  type TaskEventBody,
  type TaskPage,
  type TaskRequest,
  type TaskStatus,
  TaskSummary,
  type TaskView,
} from '@flotilla/contracts';
import { appendTaskEvent, readTaskEvents } from '@flotilla/runtime/worker';
import type { Redis } from 'ioredis';
import { TenantBusyError } from '../errors.js';
import { DEFAULT_OWNER } from './owner.js';
import { parseTaskRecord, type TaskRecord } from './record.js';
import { createTaskScript, extendPlanScript, transitionScript, writeLiveTaskScript } from './scripts.js';
import { buildTaskView } from './view.js';

/** Task state outlives the task by a day unless TASK_TTL_SECONDS says otherwise. */
export const DEFAULT_TASK_TTL_SECONDS = 24 * 3600;

export { DEFAULT_OWNER } from './owner.js';

/** Entries of the task index examined per GET /v1/tasks, so a filter that matches nothing stays cheap. */
const MAX_INDEX_SCAN = 1000;

export interface TaskListOptions {
  limit: number;
  /** A nextCursor from an earlier page (an index member): continue after it. */
  cursor: string | undefined;
  /** Only these statuses; all when undefined. */
  statuses: readonly TaskStatus[] | undefined;
}

export interface NewTask {
  taskId: string;
  request: TaskRequest;
  /** The idempotency key from the body or the Idempotency-Key header. */
  idempotencyKey: string | undefined;
  limits: BudgetLimits;
  deadline: number;
  traceId: string | undefined;
  /** Whose task this is (the index GET /v1/tasks reads). Default DEFAULT_OWNER. */
  owner?: string;
}

export type CreateOutcome =
  | { created: true; record: TaskRecord }
  /** The key already names a task; `sameRequest` says whether this replay asked for the same thing. */
  | { created: false; record: TaskRecord; sameRequest: boolean };

export interface Transition {
  from: readonly TaskStatus[];
  to: TaskStatus;
  fields?: Record<string, string | number>;
  /** Appended in the same step; `at` is added here. */
  event?: TaskEventBody;
}

/**
 * What identifies a request for idempotency: the fields that change the work. Keys are sorted so
 * `{a, b}` and `{b, a}` hash alike.
 */
export function requestFingerprint(request: TaskRequest): string {
  const canonical = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
        )
      : v;
  const { goal, budget, metadata } = request;
  return createHash('sha256')
    .update(JSON.stringify(canonical({ goal, budget: budget ?? null, metadata: metadata ?? null })))
    .digest('hex');
}

/** The task id of a task index member (`<µs, 16 digits>:<taskId>`, written by the create script). */
const taskIdOfMember = (member: string) => member.slice(17);

/**
 * Tasks in Redis: a hash per task plus its event stream, both with a TTL. Nothing lives in process
 * memory, so any orchestrator replica serves any request and a restart loses nothing. Every status
 * change goes through one atomic script with its event.
 */
export class TaskStore {
  readonly keys: RedisKeys;

  constructor(
    readonly redis: Redis,
    readonly prefix: string,
    readonly ttlSeconds = DEFAULT_TASK_TTL_SECONDS,
    /** Queued and running tasks one owner may have (TENANT_MAX_OPEN_TASKS); 0: no cap. */
    readonly maxOpenPerOwner = 0,
  ) {
    this.keys = redisKeys(prefix);
  }

  async create(task: NewTask): Promise<CreateOutcome> {
    const { taskId, request, idempotencyKey } = task;
    const createdMs = Date.now();
    const now = new Date(createdMs).toISOString();
    const owner = task.owner ?? DEFAULT_OWNER;
    const fields: Record<string, string> = {
      taskId,
      owner,
      status: 'queued',
      goal: request.goal,
      limits: JSON.stringify(task.limits),
      deadline: String(task.deadline),
      requestHash: requestFingerprint(request),
      orchestratorTokens: '0',
      createdAt: now,
      updatedAt: now,
    };
    if (request.budget) fields.budget = JSON.stringify(request.budget);
    if (request.metadata) fields.metadata = JSON.stringify(request.metadata);
    if (idempotencyKey) fields.idempotencyKey = idempotencyKey;
    if (task.traceId) fields.traceId = task.traceId;
    const event = encodeTaskEvent({ type: 'status', taskId, status: 'queued' }, new Date(now));

    const taskKey = this.keys.task(taskId);
    const [created, id] = (await createTaskScript(
      this.redis,
      [
        idempotencyKey ? this.keys.taskByKey(owner, idempotencyKey) : taskKey,
        taskKey,
        this.keys.taskEvents(taskId),
        this.keys.queuedTasks,
        this.keys.openTasks,
        this.keys.taskIndex(owner),
        this.keys.openTasksOf(owner),
      ],
      [
        idempotencyKey ? '1' : '0',
        taskId,
        this.ttlSeconds,
        event,
        this.keys.task(''),
        createdMs,
        task.deadline,
        this.maxOpenPerOwner,
        ...Object.entries(fields).flat(),
      ],
    )) as [number, string];
    if (created === -1) throw new TenantBusyError(Number(id), this.maxOpenPerOwner);

    // A new task is exactly the fields just written: no second read on the submit path.
    const record = created === 1 ? parseTaskRecord(fields) : await this.get(id);
    if (!record) throw new Error(`task ${id} vanished right after it was ${created ? 'created' : 'found'}`);
    if (created === 1) return { created: true, record };
    return { created: false, record, sameRequest: record.requestHash === fields.requestHash };
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return parseTaskRecord(await this.redis.hgetall(this.keys.task(taskId)));
  }

  /**
   * An owner's tasks, newest first, from the index the create script writes. Entries whose task
   * expired are skipped and removed. With a status filter a page may come back short (even empty)
   * with a nextCursor, once MAX_INDEX_SCAN entries were examined: a bounded request, not a full scan.
   */
  async list(owner: string, { limit, cursor, statuses }: TaskListOptions): Promise<TaskPage> {
    const index = this.keys.taskIndex(owner);
    const wanted = statuses ? new Set(statuses) : undefined;
    const tasks: TaskPage['tasks'] = [];
    const gone: string[] = [];
    let after = cursor;
    let scanned = 0;
    let more = true;
    while (more && tasks.length < limit && scanned < MAX_INDEX_SCAN) {
      const batch = Math.min(wanted ? 100 : limit - tasks.length, MAX_INDEX_SCAN - scanned);
      const members = await this.redis.zrange(index, after ? `(${after}` : '+', '-', 'BYLEX', 'REV', 'LIMIT', 0, batch);
      more = members.length === batch;
      const pipeline = this.redis.pipeline();
      for (const m of members)
        pipeline.hmget(this.keys.task(taskIdOfMember(m)), 'status', 'goal', 'createdAt', 'updatedAt');
      const rows = (await pipeline.exec()) ?? [];
      for (const [i, m] of members.entries()) {
        after = m;
        scanned++;
        const [err, values] = rows[i] ?? [];
        if (err) throw err;
        const [status, goal, createdAt, updatedAt] = values as (string | null)[];
        const summary = TaskSummary.safeParse({ taskId: taskIdOfMember(m), status, goal, createdAt, updatedAt });
        if (!summary.success) {
          if (status === null) gone.push(m);
          continue;
        }
        if (wanted && !wanted.has(summary.data.status)) continue;
        tasks.push(summary.data);
        if (tasks.length === limit) {
          more = more || i < members.length - 1;
          break;
        }
      }
    }
    if (gone.length) await this.redis.zrem(index, ...gone);
    // A full page may have been the last one: look for one older entry, so the common end of a
    // listing is nextCursor null rather than one more request for an empty page.
    if (more && after && tasks.length === limit)
      more = (await this.redis.zrange(index, `(${after}`, '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)).length > 0;
    return { tasks, nextCursor: more && after ? after : null };
  }

  async transition(taskId: string, t: Transition): Promise<{ applied: boolean; status: TaskStatus | undefined }> {
    const now = new Date();
    const at = now.toISOString();
    const event = t.event ? encodeTaskEvent(t.event, now) : '';
    const fields = Object.entries(t.fields ?? {}).flatMap(([k, v]) => [k, String(v)]);
    const [code, status] = (await transitionScript(
      this.redis,
      [this.keys.task(taskId), this.keys.taskEvents(taskId), this.keys.queuedTasks, this.keys.openTasks],
      [t.from.join(','), t.to, this.ttlSeconds, event, at, taskId, ...fields],
    )) as [number, string];
    return { applied: code === 1, status: code === -1 ? undefined : (status as TaskStatus) };
  }

  /**
   * Stores the plan unless one is stored already, and returns the stored one: a planning job that
   * is retried after a crash dispatches the plan the first attempt chose, so subtask ids stay stable.
   * A task that expired is not brought back (the plan is returned, and the dispatch finds no task).
   */
  async savePlan(taskId: string, plan: PlannedSubtask[]): Promise<PlannedSubtask[]> {
    const key = this.keys.task(taskId);
    await writeLiveTaskScript(this.redis, [key], ['HSETNX', 'plan', JSON.stringify(plan)]);
    const stored = await this.redis.hget(key, 'plan');
    return stored ? (JSON.parse(stored) as PlannedSubtask[]) : plan;
  }

  /**
   * Replaces the plan with `plan` (the old one plus the re-plan's subtasks) and marks the task
   * replanned, unless it has been already: the first re-plan wins, and a retried aggregation reuses
   * it. Returns the plan now stored.
   */
  async extendPlan(taskId: string, plan: PlannedSubtask[]): Promise<PlannedSubtask[]> {
    const stored = await extendPlanScript(this.redis, [this.keys.task(taskId)], [JSON.stringify(plan)]);
    return stored ? (JSON.parse(stored) as PlannedSubtask[]) : plan;
  }

  /**
   * Tasks still `queued` whose planning job was last made sure of at or before `before` (epoch ms),
   * oldest first: the ones a crash between accepting and enqueueing may have left behind.
   */
  async queuedSince(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.queuedTasks, '-inf', before, 'LIMIT', 0, limit);
  }

  /**
   * Pushes queued tasks to the back of the sweep's line once their planning job is made sure of, so
   * a backlog larger than one sweep's batch is worked through rather than the same batch re-checked.
   * XX: a task that left `queued` meanwhile (and so the index) is not put back.
   */
  async touchQueued(taskIds: readonly string[], at: number): Promise<void> {
    if (taskIds.length === 0) return;
    await this.redis.zadd(this.keys.queuedTasks, 'XX', ...taskIds.flatMap((id) => [at, id]));
  }

  /** Unfinished tasks whose deadline is at or before `before` (epoch ms), earliest first. */
  async openPast(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.openTasks, '-inf', before, 'LIMIT', 0, limit);
  }

  /** Drops a task from the sweep's indexes: its hash expired (or was never readable), so nothing is left to sweep. */
  async unindex(taskId: string): Promise<void> {
    await this.redis.multi().zrem(this.keys.queuedTasks, taskId).zrem(this.keys.openTasks, taskId).exec();
  }

  /** Records that the task's answer and notes are in memory, so a retried aggregation does not write them again. */
  async markRemembered(taskId: string): Promise<void> {
    await writeLiveTaskScript(this.redis, [this.keys.task(taskId)], ['HSET', 'remembered', '1']);
  }

  async addOrchestratorTokens(taskId: string, tokens: number): Promise<void> {
    if (tokens > 0)
      await writeLiveTaskScript(
        this.redis,
        [this.keys.task(taskId)],
        ['HINCRBY', 'orchestratorTokens', Math.round(tokens)],
      );
  }

  async setSubtaskErrors(taskId: string, errors: Record<string, string>): Promise<void> {
    await writeLiveTaskScript(this.redis, [this.keys.task(taskId)], ['HSET', 'subtaskErrors', JSON.stringify(errors)]);
  }

  async appendEvent(event: TaskEventBody): Promise<string> {
    return appendTaskEvent(this.redis, this.prefix, event, this.ttlSeconds);
  }

  /** The task's events in order, from the start or after a stream id. Unreadable entries are skipped. */
  async events(taskId: string, afterId?: string): Promise<{ id: string; event: TaskEvent }[]> {
    return readTaskEvents(this.redis, this.prefix, taskId, afterId);
  }

  /** The task as the API shows it; undefined when it is missing, or not `owner`'s when an owner is given. */
  async view(taskId: string, owner?: string): Promise<TaskView | undefined> {
    const record = await this.get(taskId);
    if (!record || (owner !== undefined && record.owner !== owner)) return undefined;
    const events = await this.events(taskId);
    return buildTaskView(
      record,
      events.map((e) => e.event),
    );
  }
}
