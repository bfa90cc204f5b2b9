// Test support for the orchestrator's integration tests (and the lead's end-to-end tests): a real
// orchestrator on a unique prefix against the run's shared Redis, and role workers that are the
// runtime's own runWorker, in-process, so the orchestrator is tested against the real worker
// protocol rather than a second implementation of it. Not part of the runtime image (dist/**/*.test.*).
import { type BudgetLimits, queueNames, type TaskView, TERMINAL_TASK_STATUSES } from '@flotilla/contracts';
import {
  createKillSwitch,
  type KillSwitch,
  type MemoryStore,
  redisCheck,
  registerHealthRoutes,
  type ToolLog,
} from '@flotilla/runtime';
import {
  ApiKeyRing,
  type ApiKeyScope,
  formatApiKeyLine as formatLine,
  generateApiKey,
  parseApiKeys,
} from '@flotilla/runtime/auth';
import type { LlmClient } from '@flotilla/runtime/llm';
import {
  type AgentContext,
  type AgentResult,
  defineWorker,
  listRoles,
  type RunningWorker,
  runWorker,
  type WorkerDefinition,
} from '@flotilla/runtime/worker';
import { testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Queue, type Telemetry } from 'bullmq';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { type AppDeps, buildApp } from '../api/app.js';
import { OperatorService } from '../operator/service.js';
import { createOrchestrator, type Orchestrator, type SweepOptions } from '../orchestrator.js';

/** A logger that drops everything; pass a real one when debugging a test. */
export const silentLog = {
  level: 'silent',
  fatal: () => {},
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  trace: () => {},
  silent: () => {},
  child() {
    return this;
  },
} as unknown as FastifyBaseLogger;

/**
 * API keys for tests, made the way `pnpm keys add` makes them and read through the keys-file
 * parser: `ring` for the app, `auth(name)` for a client's request headers.
 */
export function testKeys<N extends string>(clients: Record<N, ApiKeyScope>) {
  const keys = Object.fromEntries(Object.keys(clients).map((name) => [name, generateApiKey()])) as Record<N, string>;
  const text = (Object.entries(clients) as [N, ApiKeyScope][])
    .map(([name, scope]) => formatLine(name, scope, keys[name]))
    .join('\n');
  return {
    ring: new ApiKeyRing(parseApiKeys(text)),
    key: (name: N) => keys[name],
    auth: (name: N) => ({ authorization: `Bearer ${keys[name]}` }),
  };
}

export const TEST_LIMITS: BudgetLimits = { maxSteps: 20, maxToolCalls: 10, maxSeconds: 60, maxTokens: 50_000 };

export interface HarnessOptions {
  llm: LlmClient;
  /** Memory for answers and notes; its writes go through a gateway with the prefix's kill switch. */
  memory?: MemoryStore;
  /** How often the memory cleanup job runs. Default: the orchestrator's (an hour). */
  memoryCleanupEveryMs?: number;
  /** Receives the memory gateway's audit records. Default: dropped, as every other log line. */
  auditLog?: ToolLog;
  /** Run the plan and aggregate workers. Default true. */
  autorun?: boolean;
  /** Listen on a random loopback port (SSE and fuzz tests); otherwise use app.inject. Default false. */
  listen?: boolean;
  app?: Partial<Omit<AppDeps, 'tasks' | 'roles' | 'redis' | 'operator'>>;
  /** Receives the operator service's log lines (its audit records). Default: dropped. */
  operatorLog?: FastifyBaseLogger;
  /** TENANT_MAX_OPEN_TASKS. Default 0: no cap. */
  maxOpenTasksPerTenant?: number;
  /** Redis to use instead of the run's shared one (a private server a test may kill). */
  redisUrl?: string;
  /** BullMQ telemetry (bullmqTelemetry()) for tests that follow a trace through the queues. */
  telemetry?: Telemetry;
  /** Reuse another harness's prefix (a second orchestrator replica). Default: a fresh unique one. */
  prefix?: string;
  /** Delete every key under the prefix on close. Default true; false when another harness takes over the prefix. */
  cleanup?: boolean;
  /** PLAN_REPLAN. Default true, as in production. */
  replan?: boolean;
  /** The sweep, on top of TEST_SWEEP (fast, so tests wait milliseconds rather than the defaults' seconds). */
  sweep?: SweepOptions;
}

/**
 * Sweeps every 200 ms and re-enqueues planning after 300 ms, so a test of either waits little; the
 * deadline grace keeps the default, so no test's task is failed unless the test asks for it.
 */
export const TEST_SWEEP = { intervalMs: 200, requeueAfterMs: 300 } satisfies SweepOptions;

export interface Harness {
  prefix: string;
  redisUrl: string;
  redis: Redis;
  connection: Redis;
  orchestrator: Orchestrator;
  operator: OperatorService;
  /** The kill switch the orchestrator's memory writes obey (present with `memory`). */
  killSwitch: KillSwitch | undefined;
  app: FastifyInstance;
  /** http://127.0.0.1:<port> when `listen` was set. */
  url: string;
  /** Closes the roles started on this harness (startRole), the app and the orchestrator. Idempotent. */
  close(): Promise<void>;
}

/** Waits until a task has ended (completed, failed or cancelled) and returns its view. */
export const taskEnded = (h: Harness, taskId: string, timeoutMs = 30_000): Promise<TaskView> =>
  waitFor(
    async () => {
      const v = await h.orchestrator.store.view(taskId);
      return v && TERMINAL_TASK_STATUSES.includes(v.status) ? v : undefined;
    },
    { what: `task ${taskId} to end`, timeoutMs },
  );

/** The role workers started on each harness, closed with it. */
const rolesOf = new WeakMap<Harness, Role[]>();

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const redisUrl = options.redisUrl ?? testServices().redisUrl;
  const prefix = options.prefix ?? uniquePrefix('orch');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  // Tests that kill Redis expect connection errors; they surface as failed requests, not as noise.
  for (const conn of [redis, connection]) conn.on('error', () => {});
  const roles = () => listRoles(redis, prefix);
  const killSwitch = options.memory
    ? await createKillSwitch({ redis, subscriber: redis.duplicate(), prefix, refreshMs: 200 })
    : undefined;
  const orchestrator = createOrchestrator({
    connection,
    redis,
    prefix,
    llm: options.llm,
    replan: options.replan,
    memory:
      options.memory && killSwitch
        ? {
            store: options.memory,
            killSwitch,
            auditLog: options.auditLog,
            cleanupEveryMs: options.memoryCleanupEveryMs,
          }
        : undefined,
    log: silentLog,
    roles,
    limits: TEST_LIMITS,
    sweep: { ...TEST_SWEEP, ...options.sweep },
    autorun: options.autorun ?? true,
    maxOpenTasksPerTenant: options.maxOpenTasksPerTenant ?? 0,
    ...(options.telemetry ? { telemetry: options.telemetry } : {}),
  });
  const operator = new OperatorService({
    redis,
    connection,
    prefix,
    store: orchestrator.store,
    log: options.operatorLog ?? silentLog,
  });
  const app = await buildApp({
    tasks: orchestrator.tasks,
    operator,
    roles,
    redis,
    rateLimit: false,
    registerHealth: (server) => registerHealthRoutes(server, { checks: [redisCheck(redis)] }),
    ...options.app,
  });
  let url = '';
  if (options.listen) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  } else {
    await app.ready();
  }
  if (options.autorun ?? true) {
    await orchestrator.scheduleSweeps();
    await orchestrator.scheduleMemoryCleanup();
  }
  let closing: Promise<void> | undefined;
  const harness: Harness = {
    prefix,
    redisUrl,
    redis,
    connection,
    orchestrator,
    operator,
    killSwitch,
    app,
    url,
    close: () => {
      closing ??= (async () => {
        // Workers first, while Redis and the orchestrator are still there for their drain.
        await Promise.allSettled((rolesOf.get(harness) ?? []).map((r) => r.close()));
        await app.close().catch(() => {});
        await orchestrator.close();
        await operator.close();
        await killSwitch?.close();
        if (options.cleanup ?? true) await deleteKeys(redis, `${prefix}:*`).catch(() => {});
        await Promise.allSettled([redis.quit(), connection.quit()]);
      })();
      return closing;
    },
  };
  rolesOf.set(harness, []);
  return harness;
}

/** Deletes the keys matching `pattern` (a test's unique prefix), so the shared Redis doesn't fill up. */
async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/** The input of a role started without its own schema: what the offline planner fills in from a clause. */
export const Question = z.object({ question: z.string().min(1) });

export interface RoleOptions<I extends z.ZodType> {
  role: string;
  /** The role's input schema: published for the planner, enforced by the worker. Default Question. */
  input?: I;
  /** One runWorker per replica id, each with its own BullMQ worker and registry entry. Default ['<role>-1']. */
  replicas?: string[];
  /** Jobs one replica runs at once. Default 4. */
  concurrency?: number;
  /** The role's handler, as in defineWorker; its output is not checked. Default: finish with the input. */
  handler?: (input: z.output<I>, ctx: AgentContext) => Promise<AgentResult<unknown>>;
  /** The workers' LOG_LEVEL. Default 'silent'; 'info' when debugging a test. */
  logLevel?: string;
  /** The role's tools, as in defineWorker (a factory gets the workers' memory when `env` sets CHROMA_URL). */
  tools?: WorkerDefinition['tools'];
  /** More environment for the workers (CHROMA_URL, MEMORY_COLLECTION_PREFIX, KILL_SWITCH ...). */
  env?: Record<string, string>;
}

export interface Role {
  workers: RunningWorker[];
  /** Drains and stops every replica (runWorker's own graceful close). Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a role's replicas as the runtime's real runWorker, in-process, on the harness's Redis and
 * prefix: registry heartbeats, the run book's events, budgets, cancellation and invalid input all
 * behave as in a deployed worker. They close with the harness (or earlier, with close()).
 */
export async function startRole<I extends z.ZodType = typeof Question>(
  h: Harness,
  options: RoleOptions<I>,
): Promise<Role> {
  const replicas = options.replicas ?? [`${options.role}-1`];
  const handler = options.handler ?? (async (input) => ({ stopReason: 'finish', output: input }));
  const def = defineWorker({
    role: options.role,
    description: `test ${options.role}`,
    input: (options.input ?? Question) as I,
    output: z.unknown(),
    concurrency: options.concurrency ?? 4,
    tools: options.tools,
    handler,
  });
  const workers: RunningWorker[] = [];
  let closing: Promise<void> | undefined;
  const role: Role = {
    workers,
    close: () => {
      closing ??= Promise.allSettled(workers.map((w) => w.close())).then(() => undefined);
      return closing;
    },
  };
  rolesOf.get(h)?.push(role);
  for (const replica of replicas) {
    workers.push(
      await runWorker(def, {
        handleSignals: false,
        env: {
          REDIS_URL: h.redisUrl,
          QUEUE_PREFIX: h.prefix,
          REPLICA_ID: replica,
          SERVICE_VERSION: 'test',
          // A free port each: several replicas share this process.
          HEALTH_PORT: '0',
          HEALTH_HOST: '127.0.0.1',
          // The runtime's offline model; a test never reaches a vendor.
          LLM_PROVIDER: 'offline',
          LOG_LEVEL: options.logLevel ?? 'silent',
          // A handler that ignores its signal must not hold a test's afterEach for the default 25 s.
          SHUTDOWN_GRACE_MS: '5000',
          ...options.env,
        },
      }),
    );
  }
  return role;
}

/** Resolves when `signal` aborts: a handler that runs until it is cancelled. */
export const untilAborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

/** Reads an SSE response to its end (or until `stopAfter` events), parsing id/event/data. */
export async function readSse(
  res: Response,
  stopAfter = Number.POSITIVE_INFINITY,
): Promise<{ id?: string; event?: string; data: unknown }[]> {
  const out: { id?: string; event?: string; data: unknown }[] = [];
  const reader = res.body?.getReader();
  if (!reader) return out;
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const i = line.indexOf(':');
        fields[line.slice(0, i)] = line.slice(i + 1).trimStart();
      }
      if (fields.data !== undefined) {
        out.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
        if (out.length >= stopAfter) {
          await reader.cancel();
          return out;
        }
      }
      cut = buffer.indexOf('\n\n');
    }
  }
  return out;
}

/** What the task's aggregation job returned, once it has run (it runs after the last child ends). */
export async function aggregationResult(h: Harness, taskId: string): Promise<unknown> {
  const aggregate = new Queue(queueNames.aggregate, { connection: h.connection, prefix: h.prefix });
  try {
    const job = await waitFor(
      async () => {
        const j = await aggregate.getJob(taskId);
        return j?.finishedOn ? j : undefined;
      },
      { what: 'the aggregation to run' },
    );
    return job.returnvalue;
  } finally {
    await aggregate.close();
  }
}
