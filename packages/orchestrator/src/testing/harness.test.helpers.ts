// Test support for the orchestrator's integration tests (and the lead's end-to-end tests): a real
// orchestrator on a unique prefix against the run's shared Redis, and tiny in-process role
// workers that honour the worker wire contract. Not part of the runtime image (dist/**/*.test.*).
import {
  type BudgetLimits,
  SubtaskEnvelope as EnvelopeSchema,
  queueNames,
  type SubtaskEnvelope,
  type SubtaskResult,
} from '@flotilla/contracts';
import { redisCheck, registerHealthRoutes } from '@flotilla/runtime';
import type { LlmClient } from '@flotilla/runtime/llm';
import { appendTaskEvent, CancellationRegistry, heartbeat, listRoles } from '@flotilla/runtime/worker';
import { testServices, uniquePrefix } from '@flotilla/test-utils';
import { type Telemetry, UnrecoverableError, Worker } from 'bullmq';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { type AppDeps, buildApp } from '../api/app.js';
import type { AnswerMemory } from '../flow/aggregate-job.js';
import { createOrchestrator, type Orchestrator } from '../orchestrator.js';

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

export const TEST_LIMITS: BudgetLimits = { maxSteps: 20, maxToolCalls: 10, maxSeconds: 60, maxTokens: 50_000 };

export interface HarnessOptions {
  llm: LlmClient;
  memory?: AnswerMemory;
  /** Run the plan and aggregate workers. Default true. */
  autorun?: boolean;
  /** Listen on a random loopback port (SSE and fuzz tests); otherwise use app.inject. Default false. */
  listen?: boolean;
  app?: Partial<Omit<AppDeps, 'tasks' | 'roles' | 'redis'>>;
  /** Redis to use instead of the run's shared one (a private server a test may kill). */
  redisUrl?: string;
  /** BullMQ telemetry (bullmqTelemetry()) for tests that follow a trace through the queues. */
  telemetry?: Telemetry;
  /** Reuse another harness's prefix (a second orchestrator replica). Default: a fresh unique one. */
  prefix?: string;
  /** Delete every key under the prefix on close. Default true; false when another harness takes over the prefix. */
  cleanup?: boolean;
}

export interface Harness {
  prefix: string;
  redis: Redis;
  connection: Redis;
  orchestrator: Orchestrator;
  app: FastifyInstance;
  /** http://127.0.0.1:<port> when `listen` was set. */
  url: string;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const redisUrl = options.redisUrl ?? testServices().redisUrl;
  const prefix = options.prefix ?? uniquePrefix('orch');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  // Tests that kill Redis expect connection errors; they surface as failed requests, not as noise.
  for (const conn of [redis, connection]) conn.on('error', () => {});
  const roles = () => listRoles(redis, prefix);
  const orchestrator = createOrchestrator({
    connection,
    redis,
    prefix,
    llm: options.llm,
    memory: options.memory,
    log: silentLog,
    roles,
    limits: TEST_LIMITS,
    autorun: options.autorun ?? true,
    ...(options.telemetry ? { telemetry: options.telemetry } : {}),
  });
  const app = await buildApp({
    tasks: orchestrator.tasks,
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
  return {
    prefix,
    redis,
    connection,
    orchestrator,
    app,
    url,
    close: async () => {
      await app.close();
      await orchestrator.close();
      if (options.cleanup ?? true) await deleteKeys(redis, `${prefix}:*`).catch(() => {});
      await Promise.allSettled([redis.quit(), connection.quit()]);
    },
  };
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

/** What a test role's handler returns: like AgentResult, without the runtime's budget plumbing. */
export type FakeRun = { stopReason: SubtaskResult['stopReason']; output?: unknown; error?: string };

export interface FakeRoleOptions {
  role: string;
  /** JSON Schema the planner must satisfy; default `{ question: string }`. */
  inputSchema?: Record<string, unknown>;
  /** One replica id per BullMQ worker started for this role. Default ['<role>-1']. */
  replicas?: string[];
  handler: (envelope: SubtaskEnvelope, signal: AbortSignal) => Promise<FakeRun>;
  /** Subtasks whose subtask_finished event this role "loses", as if Redis had refused the write. */
  loseFinishedEvent?: (subtaskId: string) => boolean;
}

export interface FakeRole {
  workers: Worker[];
  close(): Promise<void>;
}

export const QUESTION_SCHEMA = z.toJSONSchema(z.object({ question: z.string().min(1) })) as Record<string, unknown>;

/**
 * A role served by in-process BullMQ workers that keep the worker wire contract: register in the
 * role registry, append subtask_started/finished with the replica, return a SubtaskResult,
 * fail invalid input with UnrecoverableError('invalid_input: ...'), and abort on cancellation.
 */
export async function startFakeRole(h: Harness, options: FakeRoleOptions): Promise<FakeRole> {
  const replicas = options.replicas ?? [`${options.role}-1`];
  const inputSchema = options.inputSchema ?? QUESTION_SCHEMA;
  const subscriber = h.redis.duplicate();
  const cancellations = new CancellationRegistry();
  await cancellations.listen(subscriber, h.prefix);
  const keys = { cancelled: (taskId: string) => `${h.prefix}:cancelled:${taskId}` };

  const workers = replicas.map((replica) => {
    const worker = new Worker(
      queueNames.role(options.role),
      async (job): Promise<SubtaskResult> => {
        const parsed = EnvelopeSchema.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError(`invalid_input: ${z.prettifyError(parsed.error)}`);
        const envelope = parsed.data;
        const { taskId, subtaskId } = envelope;
        const identity = { role: options.role, replica, version: 'test' };
        const finish = async (run: FakeRun): Promise<SubtaskResult> => {
          const usage = { steps: 1, toolCalls: 0, tokens: 10, ms: 1 };
          if (!options.loseFinishedEvent?.(subtaskId))
            await appendTaskEvent(h.redis, h.prefix, {
              type: 'subtask_finished',
              taskId,
              subtaskId,
              role: options.role,
              replica,
              ok: run.stopReason === 'finish',
              stopReason: run.stopReason,
              usage,
            });
          return { v: 1, taskId, subtaskId, ok: run.stopReason === 'finish', ...run, usage, worker: identity };
        };
        if (await h.redis.exists(keys.cancelled(taskId))) return finish({ stopReason: 'cancelled' });
        await appendTaskEvent(h.redis, h.prefix, {
          type: 'subtask_started',
          taskId,
          subtaskId,
          role: options.role,
          replica,
        });
        const run = new AbortController();
        const onCancel = { cancel: (reason: unknown) => run.abort(reason) };
        cancellations.track(taskId, onCancel);
        try {
          return await finish(await options.handler(envelope, run.signal));
        } catch (err) {
          if (run.signal.aborted) return finish({ stopReason: 'cancelled' });
          throw err;
        } finally {
          cancellations.untrack(taskId, onCancel);
        }
      },
      { connection: h.connection, prefix: h.prefix, concurrency: 4, name: replica },
    );
    worker.on('error', () => {});
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  for (const replica of replicas) {
    await heartbeat(h.redis, h.prefix, {
      role: options.role,
      description: `test ${options.role}`,
      inputSchema,
      replica,
      version: 'test',
    });
  }
  return {
    workers,
    close: async () => {
      await Promise.allSettled(workers.map((w) => w.close()));
      subscriber.disconnect();
    },
  };
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
