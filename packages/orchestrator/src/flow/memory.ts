import {
  createBudget,
  createToolGateway,
  type KillSwitch,
  type MemoryStore,
  memoryWriteTool,
  type ToolGateway,
  type ToolLog,
  type ToolOutcome,
} from '@flotilla/runtime';
import type { Redis } from 'ioredis';

/** What the orchestrator needs to keep answers and notes in memory. */
export interface OrchestratorMemory {
  /** Every tenant's memory (CHROMA_URL). */
  store: MemoryStore;
  /** The fleet's kill switch: "no writes" (or `memory.write` by name) stops the aggregator's writes too. */
  killSwitch: Pick<KillSwitch, 'blocks'>;
  /** TOOLS_ALLOWLIST globs; `memory.write` must match for answers to be kept. Default ['*']. */
  allowlist?: readonly string[];
  /** Where the gateway's audit records go. Default: the orchestrator's log. */
  auditLog?: ToolLog;
  /** MEMORY_CLEANUP_INTERVAL_MS: how often one replica deletes expired records. Default one hour. */
  cleanupEveryMs?: number;
}

/**
 * The orchestrator's one door to memory: a tool gateway holding `memory.write` alone, so the
 * aggregator's writes meet the allowlist, the kill switch, write idempotency and the audit log
 * exactly as a worker's notes.write does, rather than going to Chroma around them.
 */
export function createMemoryGateway(
  memory: OrchestratorMemory,
  deps: { redis: Redis; prefix: string; log: ToolLog },
): ToolGateway {
  return createToolGateway({
    tools: [memoryWriteTool(memory.store)],
    redis: deps.redis,
    prefix: deps.prefix,
    allowlist: memory.allowlist ?? ['*'],
    killSwitch: memory.killSwitch,
    log: deps.log,
    auditLog: memory.auditLog,
  });
}

export type MemoryWriteInput = Parameters<ReturnType<typeof memoryWriteTool>['run']>[0];

/** The aggregator's budget for one write: the gateway charges every call to one. */
const WRITE_LIMITS = { maxSteps: 1, maxToolCalls: 1, maxSeconds: 120, maxTokens: 1 };

/**
 * Writes records to a task's tenant's memory through the gateway. The idempotency key is the task
 * id and namespace, so a retried or redelivered aggregation replays the stored result instead of
 * writing again (the record ids, derived from task and subtask ids, make a repeat harmless anyway).
 */
export async function writeMemory(
  gateway: ToolGateway,
  call: { tenant: string; taskId: string } & MemoryWriteInput,
): Promise<ToolOutcome> {
  const { tenant, taskId, namespace, records } = call;
  const budget = createBudget(WRITE_LIMITS);
  try {
    return await gateway.call(
      'memory.write',
      { namespace, records },
      {
        budget,
        tenant,
        taskId,
        subtaskId: 'aggregate',
        role: 'orchestrator',
        callIndex: namespace === 'answers' ? 0 : 1,
        idempotencyKey: `${taskId}:aggregate:memory.write:${namespace}`,
      },
    );
  } finally {
    budget.dispose();
  }
}
