import {
  bullmqTelemetry,
  createKillSwitch,
  createMemory,
  redisCheck,
  registerHealthRoutes,
  startService,
} from '@flotilla/runtime';
import { ApiKeyRing, readApiKeysFile, watchApiKeysFile } from '@flotilla/runtime/auth';
import { createLlm } from '@flotilla/runtime/llm';
import { listRoles } from '@flotilla/runtime/worker';
import type { FastifyBaseLogger } from 'fastify';
import { buildApp } from './api/app.js';
import { orchestratorConfigProblems, orchestratorConfigSchema } from './config.js';
import { OperatorService } from './operator/service.js';
import { createOrchestrator } from './orchestrator.js';
import { MemoryAdmission } from './tasks/admission.js';

// The check refuses to start without usable keys unless AUTH=off on loopback (exit 78).
const service = startService(orchestratorConfigSchema, { name: 'orchestrator', check: orchestratorConfigProblems });
const { config, log, lifecycle } = service;
const keysFile = config.AUTH === 'on' ? config.API_KEYS_FILE : undefined;
const keys = keysFile ? new ApiKeyRing(readApiKeysFile(keysFile)) : undefined;
if (keysFile && keys) {
  const watcher = watchApiKeysFile(keysFile, keys, { intervalMs: config.API_KEYS_RELOAD_MS, log });
  lifecycle.onShutdown('keys watcher', () => watcher.close(), 'stop-intake');
}
const connection = service.redis('blocking');
const redis = service.redis('commands');

const prefix = config.QUEUE_PREFIX;
const roles = () => listRoles(redis, prefix, { staleAfterMs: config.ROLE_STALE_AFTER_MS });
// The aggregator's memory writes obey the fleet's kill switch, as every worker's tool calls do.
const killSwitch = config.CHROMA_URL
  ? await createKillSwitch({
      redis,
      subscriber: service.redis('subscriber'),
      prefix,
      initial: config.KILL_SWITCH,
      log: log as FastifyBaseLogger,
    })
  : undefined;
const orchestrator = createOrchestrator({
  connection,
  redis,
  prefix,
  llm: createLlm(config),
  memory:
    config.CHROMA_URL && killSwitch
      ? {
          store: createMemory({ ...config, url: config.CHROMA_URL, log }),
          killSwitch,
          allowlist: config.TOOLS_ALLOWLIST,
          cleanupEveryMs: config.MEMORY_CLEANUP_INTERVAL_MS,
        }
      : undefined,
  log: log as FastifyBaseLogger,
  roles,
  limits: {
    maxSteps: config.TASK_MAX_STEPS,
    maxToolCalls: config.TASK_MAX_TOOL_CALLS,
    maxSeconds: config.TASK_MAX_SECONDS,
    maxTokens: config.TASK_MAX_TOKENS,
  },
  maxSubtasks: config.PLAN_MAX_SUBTASKS,
  replan: config.PLAN_REPLAN === 'on',
  taskTtlSeconds: config.TASK_TTL_SECONDS,
  maxOpenTasksPerTenant: config.TENANT_MAX_OPEN_TASKS,
  planConcurrency: config.PLAN_CONCURRENCY,
  aggregateConcurrency: config.AGGREGATE_CONCURRENCY,
  sweep: {
    intervalMs: config.TASK_SWEEP_INTERVAL_MS,
    requeueAfterMs: config.TASK_REQUEUE_AFTER_MS,
    deadlineGraceMs: config.TASK_DEADLINE_GRACE_SECONDS * 1000,
  },
  telemetry: bullmqTelemetry(),
});

const admission = new MemoryAdmission(redis, { highWater: config.ADMISSION_REDIS_HIGH_WATER, maxAgeMs: 1000 });
// Without maxmemory nothing bounds Redis but the host: say so once, at start.
admission.reading().then(
  ({ maxBytes }) => {
    if (maxBytes === 0) log.warn('Redis has no maxmemory: new tasks are admitted however full it gets');
  },
  () => {}, // Redis not up yet: readiness reports that.
);

const operator = new OperatorService({
  redis,
  connection,
  prefix,
  store: orchestrator.store,
  log: log as FastifyBaseLogger,
  staleAfterMs: config.ROLE_STALE_AFTER_MS,
});
const app = await buildApp({
  tasks: orchestrator.tasks,
  operator,
  roles,
  redis,
  log: log as FastifyBaseLogger,
  keys,
  bodyLimit: config.BODY_LIMIT_BYTES,
  rateLimit: { max: config.RATE_LIMIT_MAX, timeWindowMs: config.RATE_LIMIT_WINDOW_MS },
  events: { heartbeatMs: config.SSE_HEARTBEAT_MS, maxClients: config.SSE_MAX_CLIENTS },
  version: config.SERVICE_VERSION,
  trustProxy: config.TRUST_PROXY,
  admission,
  registerHealth: (server) =>
    registerHealthRoutes(server, {
      checks: [
        redisCheck(redis),
        {
          name: 'workers',
          check: async () => {
            const { planWorker, aggregateWorker, sweepWorker, memoryCleanupWorker } = orchestrator;
            if (!planWorker.isRunning() || !aggregateWorker.isRunning() || !sweepWorker.isRunning()) {
              throw new Error('plan/aggregate/sweep workers not running');
            }
            if (memoryCleanupWorker && !memoryCleanupWorker.isRunning()) {
              throw new Error('memory cleanup worker not running');
            }
          },
        },
      ],
      lifecycle,
    }),
});

// Shutdown, in the lifecycle's phase order: readiness goes 503 first (not-ready, the lifecycle's
// own step); then no new work enters (HTTP server stops accepting, workers stop fetching); running
// plan/aggregate jobs drain within SHUTDOWN_GRACE_MS; connections close; telemetry flushes last.
lifecycle.onShutdown('http server', () => app.close(), 'stop-intake');
lifecycle.onShutdown('pause workers', () => orchestrator.pause(), 'stop-intake');
lifecycle.onShutdown('drain jobs', () => orchestrator.close(), 'drain');
lifecycle.onShutdown('operator queues', () => operator.close(), 'close');
if (killSwitch) lifecycle.onShutdown('kill switch', () => killSwitch.close(), 'close');

const port = config.PORT ?? config.HEALTH_PORT;
await app.listen({ port, host: config.HEALTH_HOST });
await Promise.all([
  orchestrator.planWorker.waitUntilReady(),
  orchestrator.aggregateWorker.waitUntilReady(),
  orchestrator.sweepWorker.waitUntilReady(),
  orchestrator.memoryCleanupWorker?.waitUntilReady(),
]);
// Every replica upserts the one schedule; a start without Redis fails here, as it would above.
await orchestrator.scheduleSweeps();
await orchestrator.scheduleMemoryCleanup();
service.ready();
log.info({ port, prefix, auth: config.AUTH, keys: keys?.size ?? 0 }, 'orchestrator ready');
