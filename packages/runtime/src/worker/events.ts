import {
  decodeTaskEventEntry,
  encodeTaskEvent,
  redisKeys,
  TASK_EVENT_FIELD,
  type TaskEvent,
  type TaskEventBody,
} from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { luaScript } from './scripts.js';

/** Streams keep the last events only; a task emits a few dozen, so this never trims a live one. */
export const STREAM_MAX_LEN = 10_000;
/** Events outlive the task by a week, like the task's own state. */
export const TASK_EVENTS_TTL_SECONDS = 7 * 24 * 3600;

/**
 * Appends an event and refreshes the stream's TTL in one round trip (a script rather than MULTI:
 * the stream must never be left without a TTL, and a script is one command on the wire).
 * KEYS: events. ARGV: field, event JSON, ttlSeconds, maxLen. Returns the stream id.
 */
const appendEventScript = luaScript<string>(
  'flotillaAppendEvent',
  `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return id`,
);

/**
 * Appends a progress event to the task's stream, stamped with the time. Orchestrator and workers
 * both write here; SSE readers tail it. Returns the stream id, which doubles as the SSE event id.
 */
export async function appendTaskEvent(
  redis: Redis,
  prefix: string,
  event: TaskEventBody,
  ttlSeconds = TASK_EVENTS_TTL_SECONDS,
): Promise<string> {
  const key = redisKeys(prefix).taskEvents(event.taskId);
  return appendEventScript(redis, [key], [TASK_EVENT_FIELD, encodeTaskEvent(event), ttlSeconds, STREAM_MAX_LEN]);
}

/**
 * A task's events in order, from the start or after the stream id `afterId`. Entries that hold no
 * readable TaskEvent are skipped.
 */
export async function readTaskEvents(
  redis: Redis,
  prefix: string,
  taskId: string,
  afterId?: string,
): Promise<{ id: string; event: TaskEvent }[]> {
  const rows = await redis.xrange(redisKeys(prefix).taskEvents(taskId), afterId ? `(${afterId}` : '-', '+');
  return rows.flatMap(([id, fields]) => {
    const event = decodeTaskEventEntry(fields);
    return event ? [{ id, event }] : [];
  });
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
