import { redisKeys, TaskEvent } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { appendEventScript } from './scripts.js';

/** Streams keep the last events only; a task emits a few dozen, so this never trims a live one. */
export const STREAM_MAX_LEN = 10_000;
/** Events outlive the task by a week, like the task's own state. */
export const TASK_EVENTS_TTL_SECONDS = 7 * 24 * 3600;

export type EventBody = TaskEvent extends infer E ? (E extends TaskEvent ? Omit<E, 'at'> : never) : never;

/**
 * Appends a progress event to the task's stream as an entry of its own (field `event`, JSON).
 * Orchestrator and workers both write here; SSE readers tail it. Returns the stream id, which
 * doubles as the SSE event id. Workers append theirs in batches (see RunBook).
 */
export async function appendTaskEvent(
  redis: Redis,
  prefix: string,
  event: EventBody,
  ttlSeconds = TASK_EVENTS_TTL_SECONDS,
): Promise<string> {
  const key = redisKeys(prefix).taskEvents(event.taskId);
  return appendEventScript(redis, [key], [eventJson(event), ttlSeconds, STREAM_MAX_LEN]);
}

/** An event as stored: stamped with the time it was appended. */
export const eventJson = (event: EventBody) => JSON.stringify({ ...event, at: new Date().toISOString() });

/**
 * A task's events in order, from the start or after the stream id `afterId`. Events of one entry
 * share its id, so resuming after an id skips the whole entry. What is not a readable TaskEvent
 * is skipped: the stream is shared by every service, so trust nothing.
 */
export async function readTaskEvents(
  redis: Redis,
  prefix: string,
  taskId: string,
  afterId?: string,
): Promise<{ id: string; event: TaskEvent }[]> {
  const rows = await redis.xrange(redisKeys(prefix).taskEvents(taskId), afterId ? `(${afterId}` : '-', '+');
  return rows.flatMap(([id, fields]) => parseStreamEntry(fields).map((event) => ({ id, event })));
}

/**
 * The execution ledger of a task: how many times a handler started on each subtask, counted from
 * the subtask_started events its workers appended (one per run, written before the run's effects).
 * More than one is a redelivery (a replica that crashed or overran its drain); the stream is the
 * only record, so the ledger and the events can never disagree.
 */
export async function readRunLedger(redis: Redis, prefix: string, taskId: string): Promise<Record<string, number>> {
  const runs: Record<string, number> = {};
  for (const { event } of await readTaskEvents(redis, prefix, taskId)) {
    if (event.type === 'subtask_started') runs[event.subtaskId] = (runs[event.subtaskId] ?? 0) + 1;
  }
  return runs;
}

/**
 * The events of one stream entry, validated, in order. An entry holds one event (field `event`,
 * as appendTaskEvent writes) or several appended together (field `events`, a JSON array, as a
 * worker's RunBook writes).
 */
export function parseStreamEntry(fields: string[]): TaskEvent[] {
  const events: TaskEvent[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name !== 'event' && name !== 'events') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(fields[i + 1] as string);
    } catch {
      continue;
    }
    for (const candidate of name === 'events' && Array.isArray(raw) ? raw : [raw]) {
      const r = TaskEvent.safeParse(candidate);
      if (r.success) events.push(r.data);
    }
  }
  return events;
}
