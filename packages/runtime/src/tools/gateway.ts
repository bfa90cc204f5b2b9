import { performance } from 'node:perf_hooks';
import { DEFAULT_TENANT, redisKeys, type StopReason } from '@flotilla/contracts';
import { isSpanContextValid, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { BrokenCircuitError, type CircuitBreakerPolicy, CircuitState, IsolatedCircuitError, wrap } from 'cockatiel';
import type { Redis } from 'ioredis';
import picomatch from 'picomatch';
import { z } from 'zod';
import type { Budget } from '../budget/index.js';
import { stopReasonOf } from '../budget/index.js';
import { getMetrics } from '../telemetry/metrics.js';
import { argsHash } from './audit.js';
import type { BackoffOptions } from './backoff.js';
import type { AnyTool, ToolLog } from './define.js';
import { describeError, IdempotencyUnavailableError, ToolAbortedError, ToolTimeoutError } from './errors.js';
import { type Acquired, acquire, type StoredOutcome } from './idempotency.js';
import type { KillSwitch } from './kill-switch.js';
import { attributedTimeout, retryableBy, toolBreaker, toolRetry } from './policies.js';

/** Why a call did not produce an output. Stable strings: callers and dashboards switch on them. */
export type ToolFailureCode =
  /** No tool by that name (policy_denied). */
  | 'unknown_tool'
  /** The tool exists but TOOLS_ALLOWLIST does not match it (policy_denied). */
  | 'not_allowlisted'
  /** An operator switched it off (kill_switch). */
  | 'kill_switch'
  /** The run's budget refused the call (max_tool_calls, or whichever limit was hit first). */
  | 'budget_exceeded'
  /** The arguments failed the tool's input schema (invalid_input). */
  | 'invalid_input'
  /** The last attempt timed out (tool_error). */
  | 'timeout'
  /** The tool threw and retries, if any, were used up or did not apply (tool_error). */
  | 'tool_failed'
  /** The tool's circuit breaker is open: recent calls kept failing, so this one was not tried (tool_error). */
  | 'circuit_open'
  /**
   * The fleet service the tool depends on (its `dependsOn`, e.g. memory) is down: the last attempt
   * failed transiently, timed out, or met the open breaker (tool_error). The outcome names the
   * service; the run goes on without it and is marked degraded.
   */
  | 'unavailable'
  /** The tool returned something its output schema rejects (tool_error). */
  | 'invalid_output'
  /** The run's deadline passed or it was cancelled during the call (max_seconds | cancelled). */
  | 'aborted'
  /** The stored idempotency record for this key is unreadable (tool_error). */
  | 'idempotency_corrupt'
  /** The idempotency key already holds the result of a different write (another tool or other arguments) (tool_error). */
  | 'idempotency_conflict'
  /** The call needed a person's approval and an operator denied it (approval_denied). */
  | 'approval_denied'
  /** The call needed a person's approval and nobody decided within APPROVAL_TIMEOUT_S (approval_timeout). */
  | 'approval_timeout';

/** A call's result. Policy and tool failures are data: `call` does not throw for them. */
export type ToolOutcome<O = unknown> =
  | {
      ok: true;
      output: O;
      /** Attempts the tool ran in this call; 0 when the result was replayed. */
      attempts: number;
      /** True when a write's earlier result was replayed instead of running it again. */
      cached: boolean;
    }
  | {
      ok: false;
      stopReason: StopReason;
      code: ToolFailureCode;
      message: string;
      attempts: number;
      /** With code `unavailable`: the service that was down (the tool's `dependsOn`). */
      service?: string;
    };

/** Which run a call belongs to. */
export interface ToolCallOptions {
  /** Charged one tool call; its signal bounds the call. */
  budget: Budget;
  taskId: string;
  subtaskId: string;
  /** 0-based position of this call in the run, for audit records and logs. */
  callIndex: number;
  /**
   * The run's count of identical writes made so far, by key; the gateway keeps it. A write's
   * idempotency key is `taskId:subtaskId:tool:argsHash:n`, where n counts the identical writes
   * (same tool, same validated arguments) this run already completed or replayed. So a redelivered
   * run that takes another path (an extra read, a different write first) still meets each write's
   * own record, and a run that deliberately repeats a write gets it twice. Default: a fresh count.
   */
  writes?: Map<string, number>;
  /** The task's tenant: tools scope per-tenant state by it (ToolContext.tenant). Default DEFAULT_TENANT. */
  tenant?: string;
  /** The calling role, for tools that record who wrote what. Default 'unknown'. */
  role?: string;
  /** For the audit record. Default: the active span's trace id. */
  traceId?: string;
  /** Overrides the derived key (see `writes`) as a write's idempotency key. */
  idempotencyKey?: string;
  /**
   * The subtask id derived write keys are formed with, in place of `subtaskId`: a re-planned subtask
   * that repeats a failed one's work (SubtaskEnvelope.retryOf) writes under the failed one's keys.
   */
  keyScope?: string;
}

export interface BreakerOptions {
  /** Consecutive failing attempts (errors the tool counts as transient) that open a tool's breaker. Default 5. */
  threshold?: number;
  /** How long an open breaker refuses calls before letting one test call through, ms. Default 10000. */
  halfOpenAfterMs?: number;
}

/**
 * Tools that come and go while the process runs (an MCP server's list, refreshed on its change
 * notifications). The gateway asks on every call, so a tool appears and disappears with its source.
 */
export interface ToolSource {
  /** The tools offered now. Their names must not clash with the gateway's own tools (those win). */
  tools(): readonly AnyTool[];
}

export interface ToolGatewayOptions {
  tools: readonly AnyTool[];
  /** Further tools that may change at run time; they pass the same rules as `tools`. Default none. */
  sources?: readonly ToolSource[];
  /** Command connection, for idempotency records. */
  redis: Redis;
  /** Key prefix (QUEUE_PREFIX). */
  prefix: string;
  /** picomatch globs of tool names that may run (TOOLS_ALLOWLIST). Empty allows nothing. */
  allowlist: readonly string[];
  /** picomatch globs of tool names whose calls need a person's approval (TOOLS_REQUIRE_APPROVAL), besides tools defined with requiresApproval. Default none. */
  requireApproval?: readonly string[];
  killSwitch: Pick<KillSwitch, 'blocks'>;
  log: ToolLog;
  /** Where audit records go. Default: `log`. */
  auditLog?: Pick<ToolLog, 'info'>;
  /** How long a write's result is replayed for its idempotency key, seconds. Default 86400. */
  idempotencyTtlSec?: number;
  /** Per-tool circuit breaker. */
  breaker?: BreakerOptions;
  /** Delays between retries (full jitter). */
  backoff?: BackoffOptions;
}

export type CircuitStatus = 'closed' | 'open' | 'half_open' | 'isolated';

export interface ToolGateway {
  /**
   * Runs a tool under policy. In order: allowlist, kill switch, budget, input validation, idempotency
   * (writes), then attempts with a timeout each, bounded jittered retries and a per-tool circuit
   * breaker, then output validation. One audit record and one metric per call.
   * Throws only IdempotencyUnavailableError (Redis down before a write), so the job is redelivered.
   */
  call(name: string, input: unknown, options: ToolCallOptions): Promise<ToolOutcome>;
  /** The tools the allowlist lets through now (what to offer the model), sources' tools included. */
  allowedTools(): AnyTool[];
  /**
   * Whether a call of `name` must wait for a person's approval: an allowlisted tool defined with
   * requiresApproval or matched by TOOLS_REQUIRE_APPROVAL. An unknown or refused tool needs none:
   * the call fails on its own (policy_denied) without asking anyone.
   */
  requiresApproval(name: string): boolean;
  /** A tool's breaker state (shared by tools with one breakerKey); undefined for an unknown tool. */
  circuit(name: string): CircuitStatus | undefined;
}

type OutcomeLabel =
  | 'ok'
  | 'duplicate'
  | 'policy_denied'
  | 'kill_switch'
  | 'budget'
  | 'invalid_input'
  | 'timeout'
  | 'error'
  | 'circuit_open'
  | 'invalid_output'
  | 'idempotency_conflict'
  | 'aborted';

interface Result {
  outcome: ToolOutcome;
  label: OutcomeLabel;
}

// Extra claim lifetime beyond the call's worst case, for Redis round trips and event-loop stalls.
const CLAIM_MARGIN_MS = 5000;
const MAX_MESSAGE = 1000;

const STATUS: Record<CircuitState, CircuitStatus> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'isolated',
};

const fail = (
  label: OutcomeLabel,
  stopReason: StopReason,
  code: ToolFailureCode,
  message: string,
  attempts = 0,
  service?: string,
): Result => ({
  label,
  outcome: {
    ok: false,
    stopReason,
    code,
    message: message.slice(0, MAX_MESSAGE),
    attempts,
    ...(service === undefined ? {} : { service }),
  },
});

const isOpenCircuit = (err: unknown) => err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError;

/** Whether `err` says the service behind `tool` is down rather than that the call was wrong. */
const isOutage = (tool: AnyTool, err: unknown): boolean =>
  isOpenCircuit(err) || err instanceof ToolTimeoutError || retryableBy(tool)(err);

const unavailable = (service: string, tool: string, err: unknown, attempts: number): Result => {
  const why = isOpenCircuit(err) ? 'recent calls kept failing, so this one was not tried' : describeError(err);
  const label = err instanceof ToolTimeoutError ? 'timeout' : isOpenCircuit(err) ? 'circuit_open' : 'error';
  const message = `${service} is unavailable (tool ${tool}: ${why}); go on without it`;
  return fail(label, 'tool_error', 'unavailable', message, attempts, service);
};

/** The one door every tool call goes through. Build one per process; it holds each tool's breaker. */
export function createToolGateway(options: ToolGatewayOptions): ToolGateway {
  const { redis, killSwitch, log, idempotencyTtlSec = 86_400, backoff = {} } = options;
  const { threshold = 5, halfOpenAfterMs = 10_000 } = options.breaker ?? {};
  const auditLog = options.auditLog ?? log;
  const keys = redisKeys(options.prefix);
  const maxDelayMs = backoff.maxDelayMs ?? 2000;
  const allowed = options.allowlist.length ? picomatch([...options.allowlist]) : () => false;
  const approvalGlobs = options.requireApproval?.length ? picomatch([...options.requireApproval]) : () => false;
  const tracer = trace.getTracer('flotilla');

  const tools = new Map<string, AnyTool>();
  for (const tool of options.tools) {
    if (tools.has(tool.name)) throw new TypeError(`tool ${tool.name} is defined twice`);
    tools.set(tool.name, tool);
  }
  const sources = options.sources ?? [];
  const lookup = (name: string): AnyTool | undefined => {
    const own = tools.get(name);
    if (own) return own;
    for (const source of sources) {
      const found = source.tools().find((t) => t.name === name);
      if (found) return found;
    }
    return undefined;
  };
  const everyTool = (): AnyTool[] => {
    const all = [...tools.values()];
    for (const source of sources) all.push(...source.tools().filter((t) => !tools.has(t.name)));
    return all;
  };
  // Per breaker key (a tool's name unless it shares one) and per process: one failing dependency
  // must not stop the others. Made on first use, since a source's tools arrive after start.
  const breakers = new Map<string, CircuitBreakerPolicy>();
  const breakerOf = (tool: AnyTool): CircuitBreakerPolicy => {
    let breaker = breakers.get(tool.breakerKey);
    if (!breaker) {
      breaker = toolBreaker(tool, { threshold, halfOpenAfterMs });
      breakers.set(tool.breakerKey, breaker);
    }
    return breaker;
  };

  async function run(name: string, rawInput: unknown, opts: ToolCallOptions, span: Span): Promise<Result> {
    const tool = lookup(name);
    if (!tool) return fail('policy_denied', 'policy_denied', 'unknown_tool', `no tool named "${name}"`);
    const breaker = breakerOf(tool);
    if (!allowed(name))
      return fail('policy_denied', 'policy_denied', 'not_allowlisted', `tool ${name} is not allowlisted`);
    if (killSwitch.blocks(name, tool.sideEffects)) {
      return fail('kill_switch', 'kill_switch', 'kill_switch', `tool ${name} is switched off`);
    }
    const { budget } = opts;
    const overBudget = budget.chargeToolCall();
    if (overBudget) return fail('budget', overBudget, 'budget_exceeded', `budget exhausted (${overBudget})`);

    const parsed = await tool.input.safeParseAsync(rawInput);
    if (!parsed.success) {
      return fail(
        'invalid_input',
        'invalid_input',
        'invalid_input',
        `invalid input for ${name}:\n${z.prettifyError(parsed.error)}`,
      );
    }

    const aborted = (attempts: number) => {
      const stop = budget.stopReason ?? stopReasonOf(budget.signal.reason) ?? 'cancelled';
      return fail('aborted', stop, 'aborted', `tool ${name} stopped: run ended (${stop})`, attempts);
    };

    let claim: Extract<Acquired, { kind: 'owner' }> | undefined;
    let idempotencyKey: string | undefined;
    let countWrite = () => {};
    if (tool.sideEffects === 'write') {
      const write = { tool: name, argsHash: argsHash(parsed.data) };
      if (opts.idempotencyKey) idempotencyKey = opts.idempotencyKey;
      else {
        const writes = opts.writes ?? new Map<string, number>();
        const base = `${opts.taskId}:${opts.keyScope ?? opts.subtaskId}:${name}:${write.argsHash}`;
        const n = writes.get(base) ?? 0;
        idempotencyKey = `${base}:${n}`;
        // Counted only once the write has a result (ran or replayed): a failed attempt frees its
        // key, and the run's next identical write must reuse it, as a redelivered run would.
        countWrite = () => writes.set(base, n + 1);
      }
      span.setAttribute('flotilla.tool.idempotency_key', idempotencyKey);
      let acquired: Acquired;
      try {
        acquired = await acquire(redis, keys.toolIdempotency(idempotencyKey), write, {
          // Longer than the call can run (every attempt's timeout plus every backoff), so a live claimant
          // keeps its claim and a dead one frees the key soon after.
          claimTtlMs: tool.timeoutMs * (tool.retries + 2) + maxDelayMs * tool.retries + CLAIM_MARGIN_MS,
          resultTtlSec: idempotencyTtlSec,
          signal: budget.signal,
        });
      } catch (err) {
        if (budget.signal.aborted) return aborted(0);
        throw new IdempotencyUnavailableError(idempotencyKey, err);
      }
      if (acquired.kind === 'conflict') {
        return fail(
          'idempotency_conflict',
          'tool_error',
          'idempotency_conflict',
          `idempotency key ${idempotencyKey} already holds the result of a different ${acquired.stored.tool} call`,
        );
      }
      if (acquired.kind === 'done') {
        countWrite();
        const stored = acquired.outcome;
        return stored.ok
          ? { label: 'duplicate', outcome: { ok: true, output: stored.output, attempts: 0, cached: true } }
          : { label: 'duplicate', outcome: { ...stored, code: stored.code as ToolFailureCode, attempts: 0 } };
      }
      claim = acquired;
    }

    const callLog = log.child({
      tool: name,
      taskId: opts.taskId,
      subtaskId: opts.subtaskId,
      callIndex: opts.callIndex,
    });
    const retries = toolRetry(tool, {
      backoff,
      // An operator's switch also stops the retries of a call already under way.
      stopped: () => killSwitch.blocks(name, tool.sideEffects),
      log: callLog,
    });

    let attempts = 0;
    let result: Result;
    try {
      const output = await wrap(retries, breaker, attributedTimeout(tool)).execute(async ({ signal }) => {
        // The retry policy may start one more attempt after a backoff that outlived the budget.
        if (budget.signal.aborted) throw new ToolAbortedError(name, budget.signal.reason);
        attempts++;
        return tool.run(parsed.data, {
          signal,
          log: callLog.child({ attempt: attempts }),
          idempotencyKey,
          attempt: attempts,
          tenant: opts.tenant ?? DEFAULT_TENANT,
          taskId: opts.taskId,
          subtaskId: opts.subtaskId,
          role: opts.role ?? 'unknown',
        });
      }, budget.signal);

      if (tool.output) {
        const checked = await tool.output.safeParseAsync(output);
        result = checked.success
          ? { label: 'ok', outcome: { ok: true, output: checked.data, attempts, cached: false } }
          : fail(
              'invalid_output',
              'tool_error',
              'invalid_output',
              `tool ${name} returned invalid output:\n${z.prettifyError(checked.error)}`,
              attempts,
            );
      } else {
        result = { label: 'ok', outcome: { ok: true, output, attempts, cached: false } };
      }
    } catch (err) {
      if (err instanceof ToolAbortedError || budget.signal.aborted) result = aborted(attempts);
      else if (tool.dependsOn && isOutage(tool, err)) {
        callLog.warn({ err: describeError(err), attempts, service: tool.dependsOn }, 'tool call failed: service down');
        result = unavailable(tool.dependsOn, name, err, attempts);
      } else if (isOpenCircuit(err)) {
        result = fail(
          'circuit_open',
          'tool_error',
          'circuit_open',
          `tool ${name} is failing; its circuit breaker is open`,
          attempts,
        );
      } else if (err instanceof ToolTimeoutError) {
        result = fail('timeout', 'tool_error', 'timeout', err.message, attempts);
      } else {
        callLog.warn({ err: describeError(err), attempts }, 'tool call failed');
        result = fail('error', 'tool_error', 'tool_failed', `tool ${name} failed: ${describeError(err)}`, attempts);
      }
    }

    if (claim) {
      // The tool ran to completion (even if its output was rejected): record it so it never runs again
      // for this key. Anything else frees the key for a retry.
      const ran = result.outcome.ok || result.outcome.code === 'invalid_output';
      if (ran) countWrite();
      try {
        if (ran) await claim.complete(toStored(result.outcome));
        else await claim.release();
      } catch (err) {
        callLog.error(
          { err: describeError(err), idempotencyKey },
          'could not record the write; the claim expires on its own',
        );
      }
    }
    return result;
  }

  return {
    async call(name, input, opts) {
      const started = performance.now();
      // A model can make up any tool name; metric labels must stay a bounded set.
      const known = lookup(name);
      const toolLabel = known ? name : 'unknown';
      return tracer.startActiveSpan(
        `tool ${toolLabel}`,
        { attributes: { 'flotilla.tool': toolLabel } },
        async (span) => {
          let result: Result | undefined;
          try {
            result = await run(name, input, opts, span);
            return result.outcome;
          } catch (err) {
            span.recordException(err as Error);
            throw err;
          } finally {
            const outcome = result?.outcome;
            const label = result?.label ?? 'error';
            const spanContext = span.spanContext();
            auditLog.info(
              {
                audit: {
                  tool: name,
                  sideEffects: known?.sideEffects,
                  argsHash: argsHash(input),
                  outcome: label,
                  code: outcome && !outcome.ok ? outcome.code : undefined,
                  durationMs: Math.round(performance.now() - started),
                  attempts: outcome?.attempts ?? 0,
                  cached: outcome?.ok ? outcome.cached : false,
                  traceId: opts.traceId ?? (isSpanContextValid(spanContext) ? spanContext.traceId : undefined),
                  tenant: opts.tenant ?? DEFAULT_TENANT,
                  taskId: opts.taskId,
                  subtaskId: opts.subtaskId,
                  callIndex: opts.callIndex,
                },
                // The logger reduces this to its size plus a truncated sample at LOG_TOOL_RESULT_SAMPLE_RATE.
                toolResult: outcome?.ok ? outcome.output : undefined,
              },
              'tool call',
            );
            getMetrics().toolCalls.add(1, { tool: toolLabel, outcome: label });
            span.setAttributes({ 'flotilla.tool.outcome': label, 'flotilla.tool.attempts': outcome?.attempts ?? 0 });
            if (!outcome || (!outcome.ok && outcome.stopReason === 'tool_error'))
              span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
          }
        },
      );
    },
    allowedTools: () => everyTool().filter((t) => allowed(t.name)),
    requiresApproval(name) {
      const tool = lookup(name);
      return tool !== undefined && allowed(name) && (tool.requiresApproval || approvalGlobs(name));
    },
    circuit(name) {
      const tool = lookup(name);
      return tool && STATUS[breakerOf(tool).state];
    },
  };
}

function toStored(outcome: ToolOutcome): StoredOutcome {
  return outcome.ok
    ? { ok: true, output: outcome.output }
    : { ok: false, stopReason: outcome.stopReason, code: outcome.code, message: outcome.message };
}
