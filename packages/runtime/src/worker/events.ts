import { redisKeys, TaskEvent } from '@flotilla/contracts';
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

/**
 * A task's events in order, from the start or after the stream id `afterId`. Entries that are not
 * a readable TaskEvent are skipped: the stream is shared by every service, so trust nothing.
 */
export async function readTaskEvents(
  redis: Redis,
  prefix: string,
  taskId: string,
  afterId?: string,
): Promise<{ id: string; event: TaskEvent }[]> {
  const rows = await redis.xrange(redisKeys(prefix).taskEvents(taskId), afterId ? `(${afterId}` : '-', '+');
  return rows.flatMap(([id, fields]) => {
    const event = parseEventFields(fields);
    return event ? [{ id, event }] : [];
  });
}

/** A stream entry's `event` field as a validated TaskEvent, or undefined. */
export function parseEventFields(fields: string[]): TaskEvent | undefined {
  const i = fields.indexOf('event');
  const raw = i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
  if (raw === undefined) return undefined;
  try {
    const r = TaskEvent.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
