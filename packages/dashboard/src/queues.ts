import { queueNames, redisKeys } from '@flotilla/contracts';
import type { Redis } from 'ioredis';

/**
 * The queues the board shows: one per role that ever registered (the roles set every worker adds
 * itself to at start), then the orchestrator's planning and fan-in queues. Read from the registry,
 * not by SCANning keys: that would walk every job key of a busy Redis on each refresh.
 */
export async function flotillaQueueNames(redis: Redis, prefix: string): Promise<string[]> {
  const roles = (await redis.smembers(redisKeys(prefix).roles)).sort();
  return [...roles.map(queueNames.role), queueNames.plan, queueNames.aggregate, queueNames.sweep];
}
