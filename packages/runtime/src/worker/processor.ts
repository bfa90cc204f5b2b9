import {
  type BudgetLimits,
  type StopReason,
  SubtaskEnvelope,
  type SubtaskResult,
  type WorkerIdentity,
} from '@flotilla/contracts';
import { context, propagation, trace } from '@opentelemetry/api';
import { DelayedError, type Job, type Processor, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { type Budget, budgetFromEnvelope } from '../budget/index.js';
import { isTransientError } from '../errors.js';
import type { LlmClient, LlmToolSpec } from '../llm/index.js';
import type { MemoryStore } from '../memory/index.js';
import { getMetrics } from '../telemetry/metrics.js';
import { isTracing } from '../telemetry/propagation.js';
import { withSpan } from '../telemetry/span.js';
import type { ToolGateway } from '../tools/index.js';
import { type ApprovalDeps, ApprovalPending } from './approval-gate.js';
import type { CancellationRegistry } from './cancellation.js';
import type { AgentResult, WorkerDefinition } from './define.js';
import { deleteJournal, type JournalState, loadJournal, saveJournal } from './journal.js';
import { RunBook } from './run-book.js';
import { RunContext, type RunShared } from './run-context.js';

export interface ProcessorDeps {
  def: WorkerDefinition;
  /** The connection BullMQ's Worker sends its commands on: the run book writes there (see RunBook). */
  redis: Redis;
  prefix: string;
  identity: WorkerIdentity;
  /** The container's limits; a subtask's slice can only tighten them. */
  limits: BudgetLimits;
  gateway: ToolGateway;
  /** The role's tools that pass the allowlist now, as offered to the model. */
  toolSpecs: () => LlmToolSpec[];
  llm: LlmClient;
  memory: MemoryStore | undefined;
  log: Logger;
  cancellations: CancellationRegistry;
  /** Where tool calls that need a person's approval ask for it (and the commands connection for it). */
  approvals: ApprovalDeps;
}

/**
 * The per-run metrics of one role, with their attribute sets made once: the SDK hashes them on
 * every record, and a fresh object per job is garbage per job.
 */
function runMetrics(role: string) {
  const metrics = getMetrics();
  const outcomes = {
    invalid: { role, outcome: 'invalid' },
    completed: { role, outcome: 'completed' },
    stopped: { role, outcome: 'stopped' },
  };
  const reasons = new Map<StopReason, { role: string; reason: StopReason }>();
  const reason = (r: StopReason) => {
    let attrs = reasons.get(r);
    if (!attrs) {
      attrs = { role, reason: r };
      reasons.set(r, attrs);
    }
    return attrs;
  };
  const kinds = {
    steps: { role, kind: 'steps' },
    tool_calls: { role, kind: 'tool_calls' },
    seconds: { role, kind: 'seconds' },
    tokens: { role, kind: 'tokens' },
  };
  return {
    invalid() {
      metrics.jobs.add(1, outcomes.invalid);
      metrics.stopReasons.add(1, reason('invalid_input'));
    },
    /** After budget.dispose(), so the seconds ratio is the run's own. */
    finished(stop: StopReason, budget: Budget) {
      metrics.jobs.add(1, stop === 'finish' ? outcomes.completed : outcomes.stopped);
      metrics.stopReasons.add(1, reason(stop));
      const used = budget.ratios();
      metrics.budgetUsed.record(used.steps, kinds.steps);
      metrics.budgetUsed.record(used.tool_calls, kinds.tool_calls);
      metrics.budgetUsed.record(used.seconds, kinds.seconds);
      metrics.budgetUsed.record(used.tokens, kinds.tokens);
    },
  };
}

/**
 * The BullMQ processor behind runWorker: validate, run the handler under a budget, validate the
 * output, record what happened. Logical stops complete the job with `ok: false` (data, not
 * exceptions); invalid input fails it once without retries; transient errors throw so BullMQ
 * retries with backoff.
 *
 * It takes no third (signal) parameter on purpose: BullMQ then makes no AbortController per job.
 * Cancellation comes from the task's cancel channel instead (CancellationRegistry).
 */
export function createProcessor(deps: ProcessorDeps): Processor<unknown, SubtaskResult> {
  const { def, identity, log: baseLog, cancellations } = deps;
  const shared: RunShared = deps;
  const book = new RunBook(deps.redis, deps.prefix, identity);
  const recorder = runMetrics(def.role);
  const invalid = (message: string): never => {
    recorder.invalid();
    throw new UnrecoverableError(`invalid_input: ${message}`);
  };

  /** Runs the handler in its span; a thrown error becomes a stop reason unless it is transient. */
  async function runHandler(input: unknown, run: RunContext): Promise<AgentResult<unknown>> {
    const { envelope, budget } = run;
    // bullmq-otel already runs us inside the producer's trace; the envelope's traceparent covers
    // producers without it (and manual replays).
    const parentCtx =
      trace.getActiveSpan() || !envelope.traceparent
        ? context.active()
        : propagation.extract(context.active(), { traceparent: envelope.traceparent, tracestate: envelope.tracestate });
    let result: AgentResult<unknown>;
    try {
      // With no tracer provider a span would be a no-op; the context alone still gives the run's
      // logs the task's trace id.
      result = !isTracing()
        ? await context.with(parentCtx, def.handler, def, input, run)
        : await withSpan(
            `agent ${def.role}`,
            {
              attributes: {
                'flotilla.task_id': envelope.taskId,
                'flotilla.subtask_id': envelope.subtaskId,
                'flotilla.replica': identity.replica,
              },
            },
            async (span) => {
              const r = await def.handler(input, run);
              span.setAttribute('flotilla.stop_reason', r.stopReason);
              return r;
            },
            parentCtx,
          );
    } catch (err) {
      // Not an ending: the processor parks the job until someone decides.
      if (err instanceof ApprovalPending) throw err;
      if (budget.stopReason) return { stopReason: budget.stopReason };
      if (isTransientError(err)) {
        run.log.warn({ err }, 'transient failure; BullMQ will retry');
        throw err;
      }
      run.log.error({ err }, 'handler failed');
      return { stopReason: 'runtime_error', error: err instanceof Error ? err.message : String(err) };
    }
    if (result.stopReason !== 'finish') return result;
    const out = def.output.safeParse(result.output);
    return out.success
      ? { stopReason: 'finish', output: out.data }
      : { stopReason: 'runtime_error', error: `output failed validation: ${z.prettifyError(out.error)}` };
  }

  /**
   * Parks a run that waits for an approval: saves what it saw so far, then BullMQ's step-job
   * pattern (moveToDelayed, then DelayedError) takes the job out of this worker, with no slot or
   * lock held, until the deadline or until a decision promotes it. skipAttempt: parking uses no retry.
   */
  async function park(
    job: Job,
    token: string | undefined,
    run: RunContext,
    pending: ApprovalPending,
    state: JournalState,
  ): Promise<never> {
    const { taskId, subtaskId } = run.envelope;
    await saveJournal(deps.approvals.redis, deps.prefix, taskId, subtaskId, state);
    const deadline = Date.parse(pending.approval.deadline);
    await job.moveToDelayed(deadline, token);
    // A decision made before the job was delayed could not promote it: look again now that it is.
    const now = await deps.approvals.store.get(pending.approval.id);
    if (now && now.status !== 'pending') {
      // Refused only when the decider's own promote got there first: either way the job is waiting.
      await job.promote().catch((err: unknown) => run.log.debug({ err }, 'parked job already promoted'));
    }
    run.log.info(
      { approvalId: pending.approval.id, tool: pending.approval.tool, deadline: pending.approval.deadline },
      'subtask parked until a decision',
    );
    throw new DelayedError();
  }

  return async (job: Job<unknown, SubtaskResult>, token?: string) => {
    const parsed = SubtaskEnvelope.safeParse(job.data);
    if (!parsed.success) return invalid(z.prettifyError(parsed.error));
    // zod's output is a fresh object: stamping it saves a copy per job.
    const envelope: SubtaskEnvelope = parsed.data;
    envelope.attempt = job.attemptsMade + 1;
    const input = def.input.safeParse(envelope.input);
    if (!input.success) return invalid(z.prettifyError(input.error));

    const { taskId, subtaskId } = envelope;
    // A job that started before may be a parked run resuming: then it replays what it saw. Only
    // then is the journal read, so a run that never parked pays nothing for it.
    const resumed =
      job.attemptsStarted > 1 ? await loadJournal(deps.approvals.redis, deps.prefix, taskId, subtaskId) : undefined;
    // Time parked is not the run's: it goes on with the seconds it had left, and the task's deadline
    // moves by the time it waited for a person.
    const parkedMs = resumed ? resumed.parkedMs + Math.max(0, Date.now() - resumed.parkedAt) : 0;
    const priorMs = resumed?.activeMs ?? 0;
    const startedAt = Date.now() - priorMs;
    const budget = budgetFromEnvelope(
      resumed ? { ...envelope, deadline: envelope.deadline + parkedMs } : envelope,
      deps.limits,
      resumed ? { spentMs: priorMs } : {},
    );
    // Track before the start reads the cancelled key: a cancel published between the two is then
    // seen by one or the other, never missed.
    cancellations.track(taskId, budget);
    // Not awaited here (see RunContext): the handler may think while the start is recorded.
    const run = new RunContext(
      envelope,
      identity,
      budget,
      job.id,
      shared,
      book.start(taskId, subtaskId, resumed !== undefined),
      resumed,
    );
    let result: AgentResult<unknown> | undefined;
    let pending: ApprovalPending | undefined;
    try {
      result = await runHandler(input.data, run);
    } catch (err) {
      if (!(err instanceof ApprovalPending)) throw err;
      pending = err;
    } finally {
      cancellations.untrack(taskId, budget);
      budget.dispose();
    }
    // A handler that caught the signal and returned still parks: its call was never answered.
    pending ??= run.parked;
    if (pending) {
      if (run.startFailure !== undefined) throw run.startFailure;
      return park(job, token, run, pending, {
        v: 1,
        entries: run.journal.entries,
        writes: run.writes(),
        activeMs: Date.now() - startedAt,
        parkedMs,
        parkedAt: Date.now(),
      });
    }
    if (!result) throw new Error('unreachable: a run ended without a result');
    if (resumed) {
      deleteJournal(deps.approvals.redis, deps.prefix, taskId, subtaskId).catch((err: unknown) =>
        run.log.warn({ err }, 'could not delete the run journal; it expires with the task'),
      );
    }
    // A start Redis already refused fails the job, so BullMQ retries it rather than complete a run
    // the ledger never saw. One still on its way is not waited for: it goes out ahead of the job's
    // completion on the same connection, so Redis runs it first (see RunBook).
    if (run.startFailure !== undefined) throw run.startFailure;

    const ok = result.stopReason === 'finish';
    const usage = { ...budget.usage(), ms: Date.now() - startedAt };
    const degraded = run.degraded();
    const end = book.finish(taskId, subtaskId, {
      ok,
      stopReason: result.stopReason,
      usage,
      ...(degraded.length ? { degraded } : {}),
    });
    // A write Redis refuses is not worth a re-run: the aggregator rebuilds the event from the result.
    end.recorded.catch((err: unknown) =>
      run.log.warn({ err }, 'could not record the run end; the aggregator rebuilds it'),
    );
    // On the connection before the processor returns, so before BullMQ completes the job.
    await end.sent;
    recorder.finished(result.stopReason, budget);
    if (baseLog.isLevelEnabled('info')) {
      baseLog.info({ ...run.bindings(), stopReason: result.stopReason, usage, degraded }, 'subtask finished');
    }
    return {
      v: 1,
      taskId,
      subtaskId,
      ok,
      output: result.output,
      error: 'error' in result ? result.error : undefined,
      stopReason: result.stopReason,
      usage,
      worker: identity,
      ...(degraded.length ? { degraded } : {}),
    };
  };
}
