import { type BudgetLimits, queueNames, type RoleInfo } from '@flotilla/contracts';
import type { LlmClient } from '@flotilla/runtime/llm';
import { FlowProducer, type Telemetry, Worker } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { type AggregateJobResult, createAggregateProcessor } from './flow/aggregate-job.js';
import type { TaskJobData } from './flow/jobs.js';
import { createMemoryGateway, type OrchestratorMemory } from './flow/memory.js';
import { createMemoryCleanupProcessor, type MemoryCleanupResult } from './flow/memory-cleanup-job.js';
import { createPlanProcessor, type PlanJobResult } from './flow/plan-job.js';
import { TaskQueues } from './flow/queues.js';
import { createSweepProcessor, type SweepJobResult } from './flow/sweep-job.js';
import { createPlanner } from './planner/planner.js';
import { DEFAULT_MAX_SUBTASKS } from './planner/schema.js';
import { TaskService } from './tasks/service.js';
import { DEFAULT_TASK_TTL_SECONDS, TaskStore } from './tasks/store.js';

export interface OrchestratorOptions {
  /** BullMQ's connection: must have `maxRetriesPerRequest: null` (workers block on it). */
  connection: Redis;
  /** Commands connection for task state; fail-fast settings are fine here. */
  redis: Redis;
  /** QUEUE_PREFIX; tests pass a unique one. */
  prefix: string;
  llm: LlmClient;
  /** Where answers and notes are kept (CHROMA_URL), with the kill switch their writes obey; optional. */
  memory?: OrchestratorMemory;
  log: FastifyBaseLogger;
  /** Live roles; normally the runtime registry's listRoles bound to this Redis and prefix. */
  roles: () => Promise<RoleInfo[]>;
  /** The orchestrator's own limits (AGENT_MAX_*); a task's budget can only tighten them. */
  limits: BudgetLimits;
  /** PLAN_MAX_SUBTASKS. Default 8. */
  maxSubtasks?: number;
  /** PLAN_REPLAN: one re-plan when subtasks fail in a way another plan may get round. Default true. */
  replan?: boolean;
  /** TASK_TTL_SECONDS: how long task state, events and finished jobs are kept. Default 1 day. */
  taskTtlSeconds?: number;
  /** TENANT_MAX_OPEN_TASKS: queued and running tasks per tenant. Default 0, no cap (the config's is 100). */
  maxOpenTasksPerTenant?: number;
  /** Planning jobs one replica runs at once. Default 4. */
  planConcurrency?: number;
  /** Aggregations one replica runs at once. Default 4. */
  aggregateConcurrency?: number;
  /** BullMQ telemetry (the runtime's bullmqTelemetry()), so one trace spans API -> queue -> worker. */
  telemetry?: Telemetry;
  /** The periodic sweep that repairs lost planning jobs and ends tasks past their deadline. */
  sweep?: SweepOptions;
  /** Start the plan, aggregate and sweep workers right away. Default true. */
  autorun?: boolean;
}

/** TSDoc defaults are the config's (TASK_SWEEP_INTERVAL_MS and friends in config.ts say why). */
export interface SweepOptions {
  /** TASK_SWEEP_INTERVAL_MS: how often one replica sweeps. Default 5000. */
  intervalMs?: number;
  /** TASK_REQUEUE_AFTER_MS: a task queued this long gets its planning job made sure of. Default 5000. */
  requeueAfterMs?: number;
  /** TASK_DEADLINE_GRACE_SECONDS, in ms: an unfinished task this long past its deadline fails. Default 60000. */
  deadlineGraceMs?: number;
}

export interface Orchestrator {
  store: TaskStore;
  tasks: TaskService;
  queues: TaskQueues;
  flows: FlowProducer;
  planWorker: Worker<TaskJobData, PlanJobResult>;
  aggregateWorker: Worker<TaskJobData, AggregateJobResult>;
  sweepWorker: Worker<unknown, SweepJobResult>;
  /** Deletes expired memory records; present with `memory`. */
  memoryCleanupWorker: Worker<unknown, MemoryCleanupResult> | undefined;
  /**
   * Registers the periodic sweep, a BullMQ job scheduler shared by every replica (see
   * TaskQueues.scheduleSweeps). Call once at start; calling again (any replica) replaces the schedule.
   */
  scheduleSweeps(): Promise<void>;
  /** Registers the memory cleanup's job scheduler (no-op without memory); like scheduleSweeps, once at start. */
  scheduleMemoryCleanup(): Promise<void>;
  /** Stops taking new planning/aggregation/sweep jobs; running ones finish (shutdown's stop-intake step). */
  pause(): Promise<void>;
  /** Waits for running jobs, then closes workers, queues and the flow producer. Idempotent. */
  close(): Promise<void>;
}

/**
 * Wires the orchestrator's moving parts: the task store, the queues, the flow producer, and the
 * three workers (planning, fan-in, and the sweep). The HTTP API is built separately from `tasks`
 * (buildApp).
 */
export function createOrchestrator(options: OrchestratorOptions): Orchestrator {
  const { connection, redis, prefix, log, telemetry } = options;
  const ttl = options.taskTtlSeconds ?? DEFAULT_TASK_TTL_SECONDS;
  const bull = { connection, prefix, ...(telemetry ? { telemetry } : {}) };

  const store = new TaskStore(redis, prefix, ttl, options.maxOpenTasksPerTenant ?? 0);
  const queues = new TaskQueues(bull, ttl, log);
  const flows = new FlowProducer(bull);
  flows.on('error', (err) => log.warn({ err: { message: err.message } }, 'flow producer error'));
  const planner = createPlanner({ llm: options.llm, maxSubtasks: options.maxSubtasks ?? DEFAULT_MAX_SUBTASKS });
  const tasks = new TaskService({ store, queues, limits: options.limits });

  const autorun = options.autorun ?? true;
  // As the role workers' defaults (WORKER_LOCK_MS, WORKER_STALLED_INTERVAL_MS; docs/chaos.md): a plan or
  // fan-in job left active by a dead replica, or by a Redis restart that cut its completion, runs again
  // within 5 to 12.5 s, not BullMQ's up to a minute, which outlived short task deadlines in the chaos suite.
  const locks = { lockDuration: 10_000, stalledInterval: 2_500 };
  const planWorker = new Worker<TaskJobData, PlanJobResult>(
    queueNames.plan,
    createPlanProcessor({ store, planner, roles: options.roles, flows, queues, log: log.child({ worker: 'plan' }) }),
    { ...bull, ...locks, concurrency: options.planConcurrency ?? 4, autorun },
  );
  const aggregateWorker = new Worker<TaskJobData, AggregateJobResult>(
    queueNames.aggregate,
    createAggregateProcessor({
      store,
      flows,
      replan: (options.replan ?? true) ? { planner, roles: options.roles } : undefined,
      llm: options.llm,
      memory:
        options.memory && createMemoryGateway(options.memory, { redis, prefix, log: log.child({ gateway: 'memory' }) }),
      log: log.child({ worker: 'aggregate' }),
    }),
    { ...bull, ...locks, concurrency: options.aggregateConcurrency ?? 4, autorun },
  );
  const sweepIntervalMs = options.sweep?.intervalMs ?? 5_000;
  const sweepWorker = new Worker<unknown, SweepJobResult>(
    queueNames.sweep,
    createSweepProcessor({
      store,
      queues,
      log: log.child({ worker: 'sweep' }),
      requeueAfterMs: options.sweep?.requeueAfterMs ?? 5_000,
      deadlineGraceMs: options.sweep?.deadlineGraceMs ?? 60_000,
    }),
    // One sweep at a time per replica; a second would only repeat the first one's reads.
    { ...bull, concurrency: 1, autorun },
  );
  const memoryCleanupWorker =
    options.memory &&
    new Worker<unknown, MemoryCleanupResult>(
      queueNames.memoryCleanup,
      createMemoryCleanupProcessor({ memory: options.memory.store, log: log.child({ worker: 'memory-cleanup' }) }),
      { ...bull, concurrency: 1, autorun },
    );
  const workers = [
    ['plan', planWorker],
    ['aggregate', aggregateWorker],
    ['sweep', sweepWorker],
    ...(memoryCleanupWorker ? ([['memory-cleanup', memoryCleanupWorker]] as const) : []),
  ] as const;
  for (const [name, w] of workers) {
    w.on('error', (err) => log.error({ err, worker: name }, 'worker error'));
    w.on('failed', (job, err) => log.warn({ jobId: job?.id, worker: name, reason: err.message }, 'job attempt failed'));
  }

  let closing: Promise<void> | undefined;
  return {
    store,
    tasks,
    queues,
    flows,
    planWorker,
    aggregateWorker,
    sweepWorker,
    memoryCleanupWorker,
    scheduleSweeps: () => queues.scheduleSweeps(sweepIntervalMs),
    scheduleMemoryCleanup: async () => {
      if (options.memory) await queues.scheduleMemoryCleanup(options.memory.cleanupEveryMs ?? 3_600_000);
    },
    // pause(true) returns without waiting for running jobs; draining is close()'s job.
    pause: async () => {
      await Promise.all(workers.map(([, w]) => w.pause(true)));
    },
    close: () => {
      closing ??= (async () => {
        const results = await Promise.allSettled(workers.map(([, w]) => w.close()));
        results.push(...(await Promise.allSettled([queues.close(), flows.close()])));
        for (const r of results) if (r.status === 'rejected') log.warn({ err: r.reason }, 'close step failed');
      })();
      return closing;
    },
  };
}
