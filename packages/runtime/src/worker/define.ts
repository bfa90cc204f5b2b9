import type { StopReason, SubtaskEnvelope, WorkerIdentity } from '@flotilla/contracts';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Budget } from '../budget/index.js';
import type { LlmClient, LlmToolSpec } from '../llm/index.js';
import type { Memory, MemoryStore } from '../memory/index.js';
import type { AnyTool, ToolOutcome } from '../tools/index.js';

/** The tool gateway as one run sees it: calls are charged to this run's budget and keyed by its ids. */
export interface RunTools {
  /**
   * Calls a tool through the gateway (allowlist, kill switch, budget, timeout, retries, breaker, idempotency).
   * A tool that needs approval parks the run until an operator decides (docs/approvals.md): the
   * call throws a signal the processor handles (a handler that catches it still parks), and the
   * handler later runs again from the top with its earlier model replies and tool outcomes
   * replayed, so make calls one after another and decide only from what they return.
   */
  call(name: string, input: unknown): Promise<ToolOutcome>;
  /** The allowlisted tools, described for the model. */
  specs(): LlmToolSpec[];
}

/** What a role's tool factory can build its tools from. */
export interface ToolDeps {
  /** Every tenant's memory: a tool scopes it per call with `forTenant(ctx.tenant)`. */
  memory: MemoryStore | undefined;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/**
 * Everything a handler gets; it owns nothing it must close.
 *
 * The handler starts while the run's start is still being recorded. Calls through `tools`, `llm`
 * and `memory` wait for that record, and if the task turned out to be cancelled they end the run
 * with `cancelled` before any effect. I/O a handler does on its own does not wait: route effects
 * through the context.
 */
export interface AgentContext {
  budget: Budget;
  tools: RunTools;
  llm: LlmClient;
  /** The task's tenant's memory; present when CHROMA_URL is configured. */
  memory: Memory | undefined;
  log: Logger;
  /** Fires at the budget deadline and on task cancellation. */
  signal: AbortSignal;
  envelope: SubtaskEnvelope;
  identity: WorkerIdentity;
}

/** How a run ended. `finish` must carry an output matching the role's output schema. */
export type AgentResult<O> =
  | { stopReason: 'finish'; output: O }
  | { stopReason: Exclude<StopReason, 'finish'>; output?: unknown; error?: string };

export interface WorkerDefinition<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  /** Role name; the queue is `role.<role>`. Lowercase letters, digits and dashes. */
  role: string;
  /** What the role does, for the planner. */
  description: string;
  /** Validates each job's input; its JSON Schema is published for the planner. */
  input: I;
  /**
   * Goals and the input this role should get for each: the planner shows them to the model as
   * examples, which small models follow far better than a schema. Checked against `input` here.
   */
  examples?: { goal: string; input: z.input<I> }[];
  /** Validates a finished run's output. */
  output: O;
  /** Jobs one replica runs at once. Default: WORKER_CONCURRENCY, else 2. */
  concurrency?: number;
  /**
   * Tools this role may call; the allowlist (TOOLS_ALLOWLIST) further narrows them. A function
   * receives the process's shared dependencies (memory, env) once at start.
   */
  tools?: AnyTool[] | ((deps: ToolDeps) => AnyTool[]);
  handler: (input: z.output<I>, ctx: AgentContext) => Promise<AgentResult<z.output<O>>>;
}

/** Identity function that pins the handler's input/output types to the schemas, so no one writes a type twice. */
export function defineWorker<I extends z.ZodType, O extends z.ZodType>(
  def: WorkerDefinition<I, O>,
): WorkerDefinition<I, O> {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(def.role)) {
    throw new TypeError(`worker role "${def.role}" must be lowercase letters, digits and dashes`);
  }
  def.examples?.forEach((example, i) => {
    const checked = def.input.safeParse(example.input);
    if (!checked.success)
      throw new TypeError(`worker role "${def.role}": examples[${i}].input does not match its input schema`);
  });
  return def;
}
