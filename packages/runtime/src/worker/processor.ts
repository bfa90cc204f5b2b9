import {
  type BudgetLimits,
  redisKeys,
  type StopReason,
  SubtaskEnvelope,
  type SubtaskResult,
  type WorkerIdentity,
} from '@flotilla/contracts';
import { context, propagation, trace } from '@opentelemetry/api';
import { type Job, type Processor, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { budgetFromEnvelope } from '../budget/index.js';
import type { LlmClient, LlmToolSpec } from '../llm/index.js';
import type { Memory } from '../memory/index.js';
import { getMetrics } from '../telemetry/metrics.js';
import { withSpan } from '../telemetry/span.js';
import type { ToolGateway } from '../tools/index.js';
import type { CancellationRegistry } from './cancellation.js';
import type { AgentContext, AgentResult, WorkerDefinition } from './define.js';
import { appendTaskEvent, eventJson, STREAM_MAX_LEN } from './events.js';
import { withScripts } from './scripts.js';

export interface ProcessorDeps {
  def: WorkerDefinition;
  redis: Redis;
  prefix: string;
  identity: WorkerIdentity;
  /** The container's limits; a subtask's slice can only tighten them. */
  limits: BudgetLimits;
  gateway: ToolGateway;
  /** The role's tools that pass the allowlist, as offered to the model. */
  toolSpecs: LlmToolSpec[];
  llm: LlmClient;
  memory: Memory | undefined;
  log: Logger;
  cancellations: CancellationRegistry;
}

/** Runs stay this long in the execution ledger (the task's own TTL). */
const LEDGER_TTL_SECONDS = 7 * 24 * 3600;

/**
 * Errors worth another delivery: infrastructure that may come back (Redis, an LLM vendor's 5xx after
 * its own retries). Everything else is the run's fault and ends it with a stop reason instead.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { retryable?: unknown; code?: unknown };
  if (e.retryable === true) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return (
    typeof e.code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(e.code)
  );
}

function invalidInput(message: string): never {
  throw new UnrecoverableError(`invalid_input: ${message}`);
}

/**
 * The BullMQ processor behind runWorker: validate, run the handler under a budget, validate the
 * output, record what happened. Logical stops complete the job with `ok: false` (data, not
 * exceptions); invalid input fails it once without retries; transient errors throw so BullMQ
 * retries with backoff.
 */
export function createProcessor(deps: ProcessorDeps): Processor<unknown, SubtaskResult> {
  const { def, prefix, identity, log: baseLog } = deps;
  const redis = withScripts(deps.redis);
  const keys = redisKeys(prefix);
  const metrics = getMetrics();

  return async (job: Job<unknown, SubtaskResult>, _token?: string, jobSignal?: AbortSignal) => {
    const parsed = SubtaskEnvelope.safeParse(job.data);
    if (!parsed.success) {
      metrics.jobs.add(1, { role: def.role, outcome: 'invalid' });
      metrics.stopReasons.add(1, { role: def.role, reason: 'invalid_input' });
      invalidInput(z.prettifyError(parsed.error));
    }
    const envelope = { ...parsed.data, attempt: job.attemptsMade + 1 };
    const input = def.input.safeParse(envelope.input);
    if (!input.success) {
      metrics.jobs.add(1, { role: def.role, outcome: 'invalid' });
      metrics.stopReasons.add(1, { role: def.role, reason: 'invalid_input' });
      invalidInput(z.prettifyError(input.error));
    }

    const { taskId, subtaskId } = envelope;
    // A child logger costs a redaction pass per job; make it only when something logs through it.
    const bindings = { jobId: job.id, taskId, subtaskId, attempt: envelope.attempt };
    let child: Logger | undefined;
    const jobLog = () => {
      child ??= baseLog.child(bindings);
      return child;
    };
    const startedAt = Date.now();

    const finish = async (result: AgentResult<unknown>, usage: SubtaskResult['usage']): Promise<SubtaskResult> => {
      const ok = result.stopReason === 'finish';
      const subtaskResult: SubtaskResult = {
        v: 1,
        taskId,
        subtaskId,
        ok,
        output: result.output,
        error: 'error' in result ? result.error : undefined,
        stopReason: result.stopReason,
        usage,
        worker: identity,
      };
      await appendTaskEvent(redis, prefix, {
        type: 'subtask_finished',
        taskId,
        subtaskId,
        role: def.role,
        replica: identity.replica,
        ok,
        stopReason: result.stopReason,
        usage,
      });
      metrics.jobs.add(1, { role: def.role, outcome: ok ? 'completed' : 'stopped' });
      metrics.stopReasons.add(1, { role: def.role, reason: result.stopReason });
      if (baseLog.isLevelEnabled('info'))
        baseLog.info({ ...bindings, stopReason: result.stopReason, usage }, 'subtask finished');
      return subtaskResult;
    };

    // Track before checking the cancelled key: a cancel published between the two is then seen
    // by one or the other, never missed.
    const cancel = deps.cancellations.track(taskId);
    const started = eventJson({
      type: 'subtask_started',
      taskId,
      subtaskId,
      role: def.role,
      replica: identity.replica,
    });
    const runs = await redis.flotillaStartRun(
      keys.cancelled(taskId),
      keys.taskRuns(taskId),
      keys.taskEvents(taskId),
      subtaskId,
      LEDGER_TTL_SECONDS,
      started,
      STREAM_MAX_LEN,
    );
    if (runs === 0) {
      cancel.release();
      return finish({ stopReason: 'cancelled' }, { steps: 0, toolCalls: 0, tokens: 0, ms: 0 });
    }

    // BullMQ's own per-job signal (worker.cancelJob) feeds the same controller; cheaper than AbortSignal.any.
    const onJobAbort = () => cancel.abort(jobSignal?.reason);
    jobSignal?.addEventListener('abort', onJobAbort, { once: true });
    const budget = budgetFromEnvelope(envelope, deps.limits, { signal: cancel.signal });
    let callIndex = 0;
    const ctx: AgentContext = {
      budget,
      llm: deps.llm,
      memory: deps.memory,
      get log() {
        return jobLog();
      },
      signal: budget.signal,
      envelope,
      identity,
      tools: {
        specs: () => deps.toolSpecs,
        call: (name, toolInput) =>
          deps.gateway.call(name, toolInput, { budget, taskId, subtaskId, callIndex: callIndex++ }),
      },
    };

    // bullmq-otel already runs us inside the producer's trace; the envelope's traceparent covers
    // producers without it (and manual replays).
    const parentCtx = trace.getActiveSpan()
      ? context.active()
      : propagation.extract(context.active(), { traceparent: envelope.traceparent, tracestate: envelope.tracestate });

    let result: AgentResult<unknown>;
    try {
      result = await withSpan(
        `agent ${def.role}`,
        {
          attributes: {
            'flotilla.task_id': taskId,
            'flotilla.subtask_id': subtaskId,
            'flotilla.replica': identity.replica,
          },
        },
        async (span) => {
          const r = await def.handler(input.data, ctx);
          span.setAttribute('flotilla.stop_reason', r.stopReason);
          return r;
        },
        parentCtx,
      );
    } catch (err) {
      const stop: StopReason | null = budget.stopReason ?? (cancel.signal.aborted ? 'cancelled' : null);
      if (stop) {
        result = { stopReason: stop };
      } else if (isTransient(err)) {
        jobLog().warn({ err }, 'transient failure; BullMQ will retry');
        budget.dispose(); // `finally` below releases the cancel registration
        throw err;
      } else {
        jobLog().error({ err }, 'handler failed');
        result = { stopReason: 'runtime_error', error: err instanceof Error ? err.message : String(err) };
      }
    } finally {
      cancel.release();
      jobSignal?.removeEventListener('abort', onJobAbort);
    }

    if (result.stopReason === 'finish') {
      const out = def.output.safeParse(result.output);
      result = out.success
        ? { stopReason: 'finish', output: out.data }
        : { stopReason: 'runtime_error', error: `output failed validation: ${z.prettifyError(out.error)}` };
    }
    const usage = { ...budget.usage(), ms: Date.now() - startedAt };
    for (const [kind, ratio] of Object.entries(budget.ratios())) {
      metrics.budgetUsed.record(ratio, { role: def.role, kind });
    }
    budget.dispose();
    return finish(result, usage);
  };
}
