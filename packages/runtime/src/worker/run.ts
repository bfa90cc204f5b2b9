import { hostname } from 'node:os';
import { queueNames, type WorkerIdentity } from '@flotilla/contracts';
import { MetricsTime, Worker } from 'bullmq';
import { z } from 'zod';
import { ApprovalStore } from '../approvals/index.js';
import { baseConfigSchema, type ConfigProblem, envField } from '../config/index.js';
import { chromaCheck, createHealthServer, redisCheck, workerRunningCheck } from '../health/index.js';
import type { Lifecycle, ShutdownReport } from '../lifecycle/index.js';
import { createLlm, type LlmToolSpec, llmConfigProblems, llmConfigSchema } from '../llm/index.js';
import { mcpServersField } from '../mcp/config.js';
import type { McpToolSource } from '../mcp/source.js';
import { createMemory, type MemoryStore, memoryConfigSchema } from '../memory/index.js';
import { startService } from '../service/index.js';
import { bullmqTelemetry, isTracing } from '../telemetry/index.js';
import { type AnyTool, createKillSwitch, createToolGateway } from '../tools/index.js';
import { CancellationRegistry } from './cancellation.js';
import type { WorkerDefinition } from './define.js';
import { withFaultInjection } from './fault-injection.js';
import { HAND_BACK_MARGIN_MS, RunningJobs, settlesWithin } from './hand-back.js';
import { createProcessor } from './processor.js';
import { deregister, heartbeat, type RoleRegistration } from './registry.js';
import { RunBook } from './run-book.js';

/** One data point a minute for a day: 1,440 small list entries per role queue. */
const METRICS_DATA_POINTS = 24 * MetricsTime.ONE_HOUR;

const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);

// Asked once per run; a tool's spec is computed once per tool object (a source's refresh makes new ones).
const specs = new WeakMap<AnyTool, LlmToolSpec>();
function toolSpec(tool: AnyTool): LlmToolSpec {
  let spec = specs.get(tool);
  if (!spec) {
    spec = {
      name: tool.name,
      description: tool.description,
      parameters: tool.parameters ?? (z.toJSONSchema(tool.input) as Record<string, unknown>),
    };
    specs.set(tool, spec);
  }
  return spec;
}

/** What runWorker reads from the environment, on top of the shared service settings. */
export const workerConfigSchema = baseConfigSchema.extend({
  ...llmConfigSchema.shape,
  ...memoryConfigSchema.shape,
  /** Jobs one replica runs at once; a definition's own `concurrency` wins. */
  WORKER_CONCURRENCY: int(2),
  /**
   * How long a job's lock lives without renewal (renewed every half of it); after it, another replica
   * may take the job. With the stalled interval it bounds the time from a killed replica to its job
   * running elsewhere: lock left (half to all of it) plus up to one interval, 5 to 12.5 s with these
   * defaults (BullMQ's 30 s and 30 s gave up to a minute). The price: a replica whose event loop or
   * Redis link stalls for longer than the lock loses its job to another, which runs it again
   * (idempotent writes keep that harmless). docs/delivery.md, docs/chaos.md.
   */
  WORKER_LOCK_MS: int(10_000),
  /** How often this replica looks for jobs whose lock expired (crashed or killed replicas): one small script call. */
  WORKER_STALLED_INTERVAL_MS: int(2_500),
  /**
   * Stalls (its replica died or overran its drain) a job may survive before it fails for good. 5: under
   * the chaos suite's kill rate 2 failed ~5% of tasks (a job met three dying replicas, its own or as a
   * bystander of another job's crash); a job that crashes its process every time still ends failed
   * after 6 runs. docs/chaos.md.
   */
  WORKER_MAX_STALLED_COUNT: int(5),
  /** Seconds between registry heartbeats; a replica counts as live for 3 of them. */
  WORKER_HEARTBEAT_MS: int(5_000),
  /**
   * This role is started on demand (KEDA at minReplicaCount 0): the planner keeps planning for it
   * while no replica runs, and the job it queues is what wakes one. Default false: a role with no
   * live replica is not planned for (docs/kubernetes.md).
   */
  WORKER_SCALE_TO_ZERO: envField.boolean().default(false),
  /**
   * With WORKER_SCALE_TO_ZERO: seconds after the last heartbeat of the role's last replica at which
   * the planner forgets the role, so a role removed for good stops being planned. Default 7 days: a
   * role idle for longer needs one replica started (or a longer setting) to be planned again.
   */
  ROLE_FORGET_AFTER_S: int(7 * 24 * 3600),
  /** Overrides the replica id (default: hostname-pid, which is the container id under Compose). */
  REPLICA_ID: z.string().min(1).optional(),
  /**
   * Share of job attempts failed on purpose before they run, 0..1 (default 0: none). For rollout
   * drills and chaos tests only: an image with it set is a canary that must be rolled back.
   */
  FAULT_INJECT_FAIL_RATIO: envField.fraction().default(0),
  /**
   * MCP servers whose tools this worker offers, as a JSON array (or MCP_SERVERS_FILE): each
   * `{"name","url","tokenFile"}` (streamable HTTP) or `{"name","command","args"}` (stdio, a program
   * in this image). Their tools pass the gateway as `<name>.<tool>` (docs/mcp.md). Default none.
   */
  MCP_SERVERS: mcpServersField().optional(),
});
export type WorkerConfig = z.output<typeof workerConfigSchema>;

/**
 * A forget delay within a few heartbeats would drop the role from the planner between two beats of
 * a live replica; it has to outlast them by far to mean "removed for good".
 */
export function scaleToZeroProblems(
  config: Pick<WorkerConfig, 'WORKER_SCALE_TO_ZERO' | 'ROLE_FORGET_AFTER_S' | 'WORKER_HEARTBEAT_MS'>,
): ConfigProblem[] {
  if (!config.WORKER_SCALE_TO_ZERO) return [];
  const minimumS = Math.ceil((10 * config.WORKER_HEARTBEAT_MS) / 1000);
  return config.ROLE_FORGET_AFTER_S < minimumS
    ? [
        {
          variable: 'ROLE_FORGET_AFTER_S',
          message: `${config.ROLE_FORGET_AFTER_S} is too short: at least ${minimumS} (ten heartbeats, WORKER_HEARTBEAT_MS), and normally days`,
        },
      ]
    : [];
}

export interface RunWorkerOptions {
  /** Environment to read instead of process.env (tests). */
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT handlers. Default true. */
  handleSignals?: boolean;
}

export interface RunningWorker {
  identity: WorkerIdentity;
  config: WorkerConfig;
  lifecycle: Lifecycle;
  /** Port the health server listens on (useful when HEALTH_PORT=0). */
  healthPort: number;
  /** Graceful shutdown; the same as receiving SIGTERM, without exiting the process. */
  close(): Promise<ShutdownReport>;
}

/**
 * Turns a worker definition into a running service: config, logs, health, BullMQ worker,
 * registry heartbeat, cancellation, and a graceful drain on SIGTERM.
 */
export async function runWorker(def: WorkerDefinition, options: RunWorkerOptions = {}): Promise<RunningWorker> {
  const service = startService(workerConfigSchema, {
    name: def.role,
    env: options.env,
    handleSignals: options.handleSignals,
    check: (c) => [...llmConfigProblems(c), ...scaleToZeroProblems(c)],
  });
  const { config, lifecycle } = service;
  const identity: WorkerIdentity = {
    role: def.role,
    replica: config.REPLICA_ID ?? `${hostname()}-${process.pid}`,
    version: config.SERVICE_VERSION,
  };
  const log = service.log.child({ role: def.role, replica: identity.replica });
  const workerConnection = service.redis('blocking');
  const commands = service.redis('commands');
  const subscriber = service.redis('subscriber');

  const prefix = config.QUEUE_PREFIX;
  const killSwitch = await createKillSwitch({
    redis: commands,
    subscriber: service.redis('subscriber'),
    prefix,
    initial: config.KILL_SWITCH,
    log,
  });
  const memory: MemoryStore | undefined = config.CHROMA_URL
    ? createMemory({ ...config, url: config.CHROMA_URL, log })
    : undefined;
  const tools =
    typeof def.tools === 'function' ? def.tools({ memory, env: options.env ?? process.env, log }) : (def.tools ?? []);
  let mcp: McpToolSource | undefined;
  if (config.MCP_SERVERS?.length) {
    // Loaded only when a server is declared: a worker without one never loads the MCP SDK.
    const { createMcpToolSource } = await import('../mcp/source.js');
    const source = createMcpToolSource({ servers: config.MCP_SERVERS, log, clientName: `flotilla-${def.role}` });
    mcp = source;
    lifecycle.onShutdown('mcp clients', () => source.close(), 'close');
    // Declaring a server is the explicit opening: say so, with what it may reach.
    log.info(
      { mcpServers: config.MCP_SERVERS?.map((s) => ('url' in s ? `${s.name} ${s.url}` : `${s.name} (stdio)`)) },
      'MCP servers declared: their tools pass the gateway under TOOLS_ALLOWLIST',
    );
    await source.start();
  }
  const gateway = createToolGateway({
    tools,
    sources: mcp ? [mcp] : [],
    redis: commands,
    prefix,
    allowlist: config.TOOLS_ALLOWLIST,
    requireApproval: config.TOOLS_REQUIRE_APPROVAL,
    killSwitch,
    log,
  });
  const llm = createLlm(config);
  const cancellations = new CancellationRegistry();
  await cancellations.listen(subscriber, prefix);

  if (config.FAULT_INJECT_FAIL_RATIO > 0)
    log.warn(
      { faultInjectFailRatio: config.FAULT_INJECT_FAIL_RATIO },
      'FAULT_INJECT_FAIL_RATIO is set: this replica fails that share of its job attempts on purpose (drills only)',
    );
  const processor = createProcessor({
    def,
    // Where BullMQ completes jobs: the run book's writes are ordered before each completion (see RunBook).
    redis: workerConnection,
    prefix,
    identity,
    limits: {
      maxSteps: config.AGENT_MAX_STEPS,
      maxToolCalls: config.AGENT_MAX_TOOL_CALLS,
      maxSeconds: config.AGENT_MAX_SECONDS,
      maxTokens: config.AGENT_MAX_TOKENS,
    },
    gateway,
    // Only what the gateway would allow is offered, so the model never plans around a denied tool.
    toolSpecs: () => gateway.allowedTools().map(toolSpec),
    llm,
    memory,
    log,
    cancellations,
    approvals: {
      store: new ApprovalStore(commands, prefix),
      redis: commands,
      prefix,
      timeoutMs: config.APPROVAL_TIMEOUT_S * 1000,
    },
  });

  const running = new RunningJobs();
  const worker = new Worker(
    queueNames.role(def.role),
    running.track(withFaultInjection(processor, config.FAULT_INJECT_FAIL_RATIO)),
    {
      connection: workerConnection,
      prefix,
      // Shows in CLIENT LIST and lets the orchestrator name the replica of a job that failed for good.
      name: identity.replica,
      concurrency: def.concurrency ?? config.WORKER_CONCURRENCY,
      lockDuration: config.WORKER_LOCK_MS,
      stalledInterval: config.WORKER_STALLED_INTERVAL_MS,
      maxStalledCount: config.WORKER_MAX_STALLED_COUNT,
      autorun: false,
      // BullMQ's own per-minute counts of completed and failed jobs (a day of them), which the
      // operator's GET /v1/admin/queues reports as throughput.
      metrics: { maxDataPoints: METRICS_DATA_POINTS },
      // BullMQ wraps every operation of a job in spans once given telemetry, whether or not they go
      // anywhere: about 25 µs of CPU per job on the bench machine, more than the run book costs.
      // Without a tracer provider the trace still crosses the queue in the envelope's traceparent.
      telemetry: isTracing() ? bullmqTelemetry() : undefined,
    },
  );
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  // Thrown attempts count against this version in the role's outcomes (a rollout's figures); the
  // processor's book records completed runs. Same connection, batched per event-loop turn.
  const outcomes = new RunBook(workerConnection, prefix, identity);
  worker.on('failed', (job, err) => {
    log.warn({ jobId: job?.id, reason: err.message }, 'job failed');
    outcomes
      // Input the processor refused (UnrecoverableError 'invalid_input: ...') is the caller's fault.
      .attemptFailed(
        job?.processedOn ? Date.now() - job.processedOn : 0,
        err.message.startsWith('invalid_input:') ? 'invalid_input' : 'failed',
      )
      .catch((e: Error) => log.warn({ err: { message: e.message } }, 'could not record a failed attempt'));
  });

  const registration: RoleRegistration = {
    role: def.role,
    description: def.description,
    inputSchema: z.toJSONSchema(def.input) as Record<string, unknown>,
    ...(def.examples?.length ? { examples: def.examples } : {}),
    replica: identity.replica,
    version: identity.version,
    ...(config.WORKER_SCALE_TO_ZERO ? { scaleToZero: { forgetAfterMs: config.ROLE_FORGET_AFTER_S * 1000 } } : {}),
  };
  const beat = () =>
    heartbeat(commands, prefix, registration).catch((err: Error) =>
      log.warn({ err: { message: err.message } }, 'heartbeat failed'),
    );
  await beat();
  const heartbeatTimer = setInterval(beat, config.WORKER_HEARTBEAT_MS);
  heartbeatTimer.unref();

  const checks = [redisCheck(commands), workerRunningCheck(worker)];
  // A worker whose memory is down still works (its memory tools fail `unavailable`, its tasks end
  // partial), so Chroma must not take every replica out of rotation or get it restarted.
  if (config.CHROMA_URL) checks.push(chromaCheck(config.CHROMA_URL, { token: config.CHROMA_TOKEN, optional: true }));
  const health = createHealthServer({ port: config.HEALTH_PORT, host: config.HEALTH_HOST, checks, lifecycle, log });
  const healthPort = await health.listen();

  lifecycle.onShutdown(
    'deregister',
    async () => {
      clearInterval(heartbeatTimer);
      await deregister(commands, prefix, registration);
    },
    'stop-intake',
  );
  // close() stops fetching, then waits for running jobs. Jobs still running just before the grace
  // ends are handed back to the queue for another replica at once (a drain that hands work back is a
  // clean stop: exit 0). Were that refused, or the process killed first, a job keeps its lock until it
  // expires and another replica's stalled check takes it over: at least once either way, nothing lost.
  lifecycle.onShutdown(
    'drain jobs',
    async () => {
      const closed = worker.close();
      const handBackAfter = Math.max(
        0,
        config.SHUTDOWN_GRACE_MS - Math.min(HAND_BACK_MARGIN_MS, config.SHUTDOWN_GRACE_MS / 4),
      );
      if (await settlesWithin(closed, handBackAfter)) return;
      const { handedBack, failed } = await running.handBack();
      log.warn({ handedBack, failed }, 'grace period ending: running jobs handed back to the queue');
      if (failed.length > 0) throw new Error(`could not hand back ${failed.length} job(s); their locks will expire`);
    },
    'drain',
  );
  lifecycle.onShutdown('health server', () => health.close(), 'close');
  lifecycle.onShutdown('kill switch', () => killSwitch.close(), 'close');

  void worker.run().catch((err: unknown) => log.error({ err }, 'worker stopped'));
  await worker.waitUntilReady();
  service.ready();
  log.info({ queue: queueNames.role(def.role), prefix, healthPort }, 'worker ready');

  return { identity, config, lifecycle, healthPort, close: () => lifecycle.shutdown('close()') };
}
