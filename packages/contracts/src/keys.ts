/**
 * Names of the queues and Redis keys that services share. Both sides of every hop import
 * these, so an orchestrator and a worker can never disagree about where to look.
 * `prefix` is the BullMQ prefix (QUEUE_PREFIX, default "flotilla"); tests pass a unique one.
 */
export const DEFAULT_PREFIX = 'flotilla';

/**
 * What Redis Cluster hashes a key by: the text between the first `{` and the next `}` when that is
 * not empty, else the whole key (the cluster specification's hash tag rule). Every key flotilla and
 * BullMQ write starts with the prefix, so a prefix that carries a tag (`{flotilla}`) puts every key of
 * a deployment in one slot, which BullMQ's flows (parent and children in different queues) and our
 * multi-key scripts need. Returns the tag, or undefined when the prefix carries none.
 */
export function clusterHashTag(prefix: string): string | undefined {
  const open = prefix.indexOf('{');
  if (open === -1) return undefined;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined;
}

export const queueNames = {
  /** One queue per worker role. */
  role: (role: string) => `role.${role}`,
  /** The flow parents: fan-in runs here once every child of a task has ended. */
  aggregate: 'orchestrator.aggregate',
  /** Planning jobs, so any orchestrator replica can plan a task another one accepted. */
  plan: 'orchestrator.plan',
  /** The periodic sweep (a BullMQ job scheduler): re-enqueues planning lost in a crash, ends tasks past their deadline. */
  sweep: 'orchestrator.sweep',
  /** The memory cleanup (a BullMQ job scheduler, global concurrency 1): deletes records past MEMORY_TTL_DAYS. */
  memoryCleanup: 'orchestrator.memory-cleanup',
} as const;

export const redisKeys = (prefix: string = DEFAULT_PREFIX) => ({
  /** Hash: a task's state (see TaskView). */
  task: (taskId: string) => `${prefix}:task:${taskId}`,
  /** Stream: a task's progress events (TaskEvent), read by SSE clients; its subtask_started events are the execution ledger. */
  taskEvents: (taskId: string) => `${prefix}:task:${taskId}:events`,
  /** Sorted set: taskId -> last time (epoch ms) its planning job was made sure of, for tasks still `queued`. */
  queuedTasks: `${prefix}:tasks:queued`,
  /** Sorted set: taskId -> deadline (epoch ms), for tasks not yet completed, failed or cancelled. */
  openTasks: `${prefix}:tasks:open`,
  /**
   * Sorted set, every score 0 so members sort as text: an owner's tasks as `<µs, 16 digits>:<taskId>`
   * (GET /v1/tasks, newest first). Written with the task; entries whose task expired are dropped.
   */
  taskIndex: (owner: string) => `${prefix}:tasks-by-owner:${owner}`,
  /** An owner's queued and running tasks by deadline, for its cap (TENANT_MAX_OPEN_TASKS). */
  openTasksOf: (owner: string) => `${prefix}:tasks-open-by-owner:${owner}`,
  /**
   * String: a tenant's idempotency key -> taskId. Per tenant, so one tenant's key can neither
   * replay nor block another's (a tenant id has no ':', so the pair is unambiguous).
   */
  taskByKey: (tenant: string, key: string) => `${prefix}:task-key:${tenant}:${key}`,
  /** Set of every role that ever registered. */
  roles: `${prefix}:roles`,
  /** Sorted set: replica -> last heartbeat (epoch ms). */
  roleReplicas: (role: string) => `${prefix}:role:${role}:replicas`,
  /** Hash: replica -> version it runs, so a canary's replicas can be counted. */
  roleReplicaVersions: (role: string) => `${prefix}:role:${role}:versions`,
  /**
   * Stream, capped by length: how each job attempt of the role ended, with the version and replica
   * that ran it (fields v, r, end, ms); the entry id's time is when. What a canary rollout compares.
   */
  roleOutcomes: (role: string) => `${prefix}:role:${role}:outcomes`,
  /** String (JSON): role description, input JSON Schema, versions. */
  roleMeta: (role: string) => `${prefix}:role:${role}:meta`,
  /** Hash: the kill switch state. */
  killSwitch: `${prefix}:killswitch`,
  /** Pub/sub channel announcing kill switch changes. */
  killSwitchChannel: `${prefix}:killswitch:changed`,
  /**
   * Stream: operator actions (kill switch changes, job retries), each with who and why; capped by
   * length, read with XRANGE/XREVRANGE. Not a task's stream: an incident's record outlives tasks.
   */
  operatorActions: `${prefix}:operator:actions`,
  /** String: outcome of a write tool call, by idempotency key. */
  toolIdempotency: (key: string) => `${prefix}:tool-idem:${key}`,
  /** Hash: one approval (see Approval), by its id; expires a week after it was requested. */
  approval: (id: string) => `${prefix}:approval:${id}`,
  /** Sorted set: approval id -> requested at (epoch ms), per status (pending, approved, ...). */
  approvalsByStatus: (status: string) => `${prefix}:approvals:${status}`,
  /** Sorted set: every approval no longer pending, id -> requested at (epoch ms). */
  approvalsDone: `${prefix}:approvals:done`,
  /** Set: a task's approval ids, so a cancel or the sweep finds them. */
  taskApprovals: (taskId: string) => `${prefix}:task:${taskId}:approvals`,
  /** String (JSON): what a parked run saw (model replies, tool outcomes), replayed when it resumes. */
  runJournal: (taskId: string, subtaskId: string) => `${prefix}:run-journal:${taskId}:${subtaskId}`,
  /** Pub/sub channel announcing task cancellations to running workers. */
  cancelChannel: `${prefix}:cancel`,
  /** String: set when a task is cancelled, so late workers see it too. */
  cancelled: (taskId: string) => `${prefix}:cancelled:${taskId}`,
});
export type RedisKeys = ReturnType<typeof redisKeys>;

/** BullMQ job ids may not contain ':'; this is the one place a subtask's job id is formed. */
export const subtaskJobId = (taskId: string, subtaskId: string) => `${taskId}.${subtaskId}`;
