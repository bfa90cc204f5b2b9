import { redisKeys, type TaskEvent } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { withScripts } from './scripts.js';

/** Streams keep the last events only; a task emits a few dozen, so this never trims a live one. */
export const STREAM_MAX_LEN = 10_000;
/** Events outlive the task by a week, like the task's own state. */
export const TASK_EVENTS_TTL_SECONDS = 7 * 24 * 3600;

export type EventBody = TaskEvent extends infer E ? (E extends TaskEvent ? Omit<E, 'at'> : never) : never;

/**
 * Appends a progress event to the task's stream (field `event`, JSON). Orchestrator and workers
 * both write here; SSE readers tail it. Returns the stream id, which doubles as the SSE event id.
 */
export async function appendTaskEvent(
  redis: Redis,
  prefix: string,
  event: EventBody,
  ttlSeconds = TASK_EVENTS_TTL_SECONDS,
): Promise<string> {
  const key = redisKeys(prefix).taskEvents(event.taskId);
  return withScripts(redis).flotillaAppendEvent(key, eventJson(event), ttlSeconds, STREAM_MAX_LEN);
}

/** An event as stored: stamped with the time it was appended. */
export const eventJson = (event: EventBody) => JSON.stringify({ ...event, at: new Date().toISOString() });

/** Reads a task's events in order, from the start or after `afterId`. */
export async function readTaskEvents(
  redis: Redis,
  prefix: string,
  taskId: string,
  afterId = '-',
): Promise<{ id: string; event: TaskEvent }[]> {
  const start = afterId === '-' ? '-' : `(${afterId}`;
  const rows = await redis.xrange(redisKeys(prefix).taskEvents(taskId), start, '+');
  return rows.map(([id, fields]) => ({
    id,
    event: JSON.parse(fields[fields.indexOf('event') + 1] ?? '{}') as TaskEvent,
  }));
}
