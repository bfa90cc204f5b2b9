import type { z } from 'zod';

/** Whether a tool changes the world. Writes get idempotency keys and are stopped by the "no writes" kill switch. */
export type SideEffects = 'read' | 'write';

/** The pino-compatible subset of a logger the gateway and tools need; a pino Logger fits. */
export interface ToolLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): ToolLog;
}

/** What a tool's `run` gets besides its input. */
export interface ToolContext {
  /** Aborts at this attempt's timeout and at the run's budget deadline or cancellation. Pass it to every I/O call. */
  signal: AbortSignal;
  /** Bound to the tool, task, subtask and attempt. */
  log: ToolLog;
  /**
   * Write tools only: the same for every attempt and every redelivery of the same call
   * (`${taskId}:${subtaskId}:${callIndex}` unless the caller gave one). Pass it to the far side
   * (an Idempotency-Key header, a document id) so a write retried after an unknown outcome lands once.
   */
  idempotencyKey?: string;
  /** 1-based attempt within this call (the gateway's own retries). */
  attempt: number;
  /**
   * Whose run this call belongs to, from the caller (the envelope), never from the arguments: a
   * tool that keeps per-tenant state (memory) scopes by it, so a model cannot name another tenant.
   */
  tenant: string;
  taskId: string;
  subtaskId: string;
  /** The worker role making the call (`orchestrator` for the aggregator's writes). */
  role: string;
}

/** What defineTool takes. */
export interface ToolSpec<I extends z.ZodType, R> {
  /** Unique within a gateway; what the model calls and what allowlist globs match. Letters, digits, `.`, `_`, `-`. */
  name: string;
  /** For the model: what the tool does and when to use it. */
  description: string;
  /** Validates (and transforms) the raw arguments; `run` receives its output type. */
  input: I;
  /** When given, the tool's result is validated too; a mismatch is a tool_error, never passed on. */
  output?: z.ZodType<R>;
  /** Per-attempt timeout in ms. Default 10000. */
  timeoutMs?: number;
  /** Retries after the first attempt, for errors `retryable` accepts. Default 2 (three attempts at most). */
  retries?: number;
  /** `read` or `write`. Required: guessing wrong would skip idempotency or the "no writes" switch. */
  sideEffects: SideEffects;
  /**
   * Which errors are worth another attempt (and count toward the circuit breaker).
   * Default: isTransientError (network errors, timeouts, and errors with `retryable: true`).
   */
  retryable?: (err: unknown) => boolean;
  /**
   * A person must approve each call before it runs (human in the loop). The run parks until an
   * admin decides (POST /v1/admin/approvals/{id}/decision) or APPROVAL_TIMEOUT_S passes. Default
   * false; TOOLS_REQUIRE_APPROVAL can require it of a tool per deployment as well.
   */
  requiresApproval?: boolean;
  /**
   * The JSON Schema offered to the model for the arguments. Default: derived from `input`. A tool
   * whose schema comes from elsewhere (an MCP server's inputSchema) passes it on as it came.
   */
  parameters?: Record<string, unknown>;
  /**
   * Tools with the same key share one circuit breaker: those that fail together, such as every
   * tool of one MCP server. Default: the tool's own name.
   */
  breakerKey?: string;
  /**
   * The fleet service the tool cannot work without (`memory` for the tools over Chroma). When that
   * service is down (the last attempt failed with an error the tool calls transient, timed out, or
   * met the open breaker) the call fails `unavailable` naming it, and the run is marked degraded, so
   * its task ends partial instead of reporting an answer made without memory as a full one.
   */
  dependsOn?: string;
  run(input: z.output<I>, ctx: ToolContext): Promise<R>;
}

/** A defined tool: the spec with its defaults filled in. */
export interface Tool<I extends z.ZodType = z.ZodType, R = unknown> {
  readonly name: string;
  readonly description: string;
  readonly input: I;
  readonly output: z.ZodType<R> | undefined;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly sideEffects: SideEffects;
  readonly retryable: ((err: unknown) => boolean) | undefined;
  readonly requiresApproval: boolean;
  readonly parameters: Record<string, unknown> | undefined;
  readonly breakerKey: string;
  readonly dependsOn: string | undefined;
  // Method syntax on purpose: it keeps parameters bivariant, so every Tool<I, R> is an AnyTool.
  run(input: z.output<I>, ctx: ToolContext): Promise<R>;
}

/** Any tool, whatever its schemas; what a gateway holds. */
export type AnyTool = Tool<z.ZodType, unknown>;

const TOOL_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

/**
 * Declares a tool whose `run` input is typed from its zod schema (like agent-kit's createTool), so a
 * tool's argument type is written once. Throws TypeError on a malformed definition: that is a
 * programming error, found at start-up rather than at the first call.
 */
export function defineTool<I extends z.ZodType, R>(spec: ToolSpec<I, R>): Tool<I, R> {
  const { timeoutMs = 10_000, retries = 2 } = spec;
  if (!TOOL_NAME.test(spec.name)) {
    throw new TypeError(
      `tool name "${spec.name}" must start with a letter and use letters, digits, ".", "_" or "-" (max 64)`,
    );
  }
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new TypeError(`tool ${spec.name}: timeoutMs must be > 0`);
  if (!(Number.isInteger(retries) && retries >= 0))
    throw new TypeError(`tool ${spec.name}: retries must be an integer >= 0`);
  if (spec.sideEffects !== 'read' && spec.sideEffects !== 'write') {
    throw new TypeError(`tool ${spec.name}: sideEffects must be 'read' or 'write'`);
  }
  return Object.freeze({
    name: spec.name,
    description: spec.description,
    input: spec.input,
    output: spec.output,
    timeoutMs,
    retries,
    sideEffects: spec.sideEffects,
    retryable: spec.retryable,
    requiresApproval: spec.requiresApproval === true,
    parameters: spec.parameters,
    breakerKey: spec.breakerKey ?? spec.name,
    dependsOn: spec.dependsOn,
    run: spec.run,
  });
}
