import { decodeTaskEventEntry, type TaskEvent } from '@flotilla/contracts';
import { duplicateConnection } from '@flotilla/runtime';
import type { Redis } from 'ioredis';
import type { TaskStore } from '../tasks/store.js';

const TERMINAL = new Set<TaskEvent['type']>(['completed', 'failed', 'cancelled']);

/**
 * Tails a task's event stream from its start until a terminal event, the signal, or `untilMs`
 * (epoch ms), handing each event to `onEvent`. Returns whether the task ended. Its own Redis
 * connection: XREAD BLOCK holds one while it waits.
 */
export async function watchTask(
  redis: Redis,
  store: TaskStore,
  taskId: string,
  { untilMs, signal, onEvent }: { untilMs: number; signal: AbortSignal; onEvent: (event: TaskEvent) => Promise<void> },
): Promise<boolean> {
  const conn = duplicateConnection(redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
  conn.on('error', () => {});
  const stop = () => conn.disconnect();
  signal.addEventListener('abort', stop, { once: true });
  try {
    await conn.connect();
    let cursor = '0-0';
    while (!signal.aborted) {
      const left = untilMs - Date.now();
      if (left <= 0) return false;
      const batch = (await conn.xread(
        'COUNT',
        100,
        'BLOCK',
        // Short blocks, so a vanished task (TTL) or the deadline is noticed without a wake-up event.
        Math.min(left, 5000),
        'STREAMS',
        store.keys.taskEvents(taskId),
        cursor,
      )) as [string, [string, string[]][]][] | null;
      if (!batch) {
        if ((await conn.exists(store.keys.task(taskId))) === 0) return false;
        continue;
      }
      for (const [id, fields] of batch[0]?.[1] ?? []) {
        cursor = id;
        const event = decodeTaskEventEntry(fields);
        if (!event) continue;
        await onEvent(event);
        if (TERMINAL.has(event.type)) return true;
      }
    }
    return false;
  } catch (err) {
    if (signal.aborted) return false;
    throw err;
  } finally {
    signal.removeEventListener('abort', stop);
    conn.disconnect();
  }
}

/** One line a person can read for an event: what a client shows as progress. */
export function describeEvent(event: TaskEvent): string {
  switch (event.type) {
    case 'status':
      return `task is ${event.status}`;
    case 'planned':
      return `planned ${event.subtasks.length} subtask(s)`;
    case 'subtask_started':
      return `subtask ${event.subtaskId} (${event.role}) started`;
    case 'subtask_resumed':
      return `subtask ${event.subtaskId} (${event.role}) resumed`;
    case 'approval_requested':
      return `subtask ${event.subtaskId} waits for an operator's approval`;
    case 'approval_decided':
      return `approval for subtask ${event.subtaskId}: ${event.decision}`;
    case 'subtask_finished':
      return `subtask ${event.subtaskId} (${event.role}) finished: ${event.stopReason}`;
    case 'completed':
      return event.partial ? 'completed (partial answer)' : 'completed';
    case 'failed':
      return `failed: ${event.reason}`;
    case 'cancelled':
      return 'cancelled';
    default:
      return (event as { type: string }).type;
  }
}
