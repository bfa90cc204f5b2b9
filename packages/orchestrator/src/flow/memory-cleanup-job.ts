import type { MemoryStore } from '@flotilla/runtime';
import type { Processor } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';

export interface MemoryCleanupResult {
  /** Collections (one per tenant and namespace) looked at. */
  collections: number;
  /** Records deleted for being older than MEMORY_TTL_DAYS. */
  deleted: number;
}

/**
 * Deletes memory records past their TTL in every tenant's collections. Runs from a BullMQ job
 * scheduler on its own queue with a global concurrency of 1 (TaskQueues.scheduleMemoryCleanup), so
 * one replica cleans at a time however many run, and a slow cleanup never delays the task sweep.
 * Reads already skip expired records; this only gives the space back.
 */
export function createMemoryCleanupProcessor(deps: {
  memory: MemoryStore;
  log: FastifyBaseLogger;
}): Processor<unknown, MemoryCleanupResult> {
  return async () => {
    const result = await deps.memory.cleanupExpired();
    if (result.deleted > 0) deps.log.info(result, 'deleted expired memory records');
    return result;
  };
}
