import {
  encodeTaskEvent,
  redisKeys,
  type StopReason,
  TASK_EVENT_FIELD,
  type Usage,
  type WorkerIdentity,
} from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { appendTaskEvent, STREAM_MAX_LEN, TASK_EVENTS_TTL_SECONDS } from './events.js';
import { luaScript } from './scripts.js';

/**
 * A run's start in one command: its started event (appended as appendTaskEvent does), and whether
 * the task had been cancelled by then.
 * KEYS: events, cancelled. ARGV: field, event JSON, ttlSeconds, maxLen. Returns 1 if cancelled.
 */
const startScript = luaScript<number>(
  'flotillaRunStart',
  `
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('EXISTS', KEYS[2])`,
);

/** How a run's start went: recorded and free to act, or its task had been cancelled by then. */
export type StartOutcome = 'running' | 'cancelled';

/** How a run ended, as its finished event says. */
export interface RunEnd {
  ok: boolean;
  stopReason: StopReason;
  usage: Usage;
}

/**
 * A run's entries in its task's event stream: `subtask_started` before any effect (the stream's
 * started events are the execution ledger; see readRunLedger) and `subtask_finished` before
 * BullMQ completes the job, so a reader of the stream never sees a subtask finish out of order.
 *
 * Give it the connection the BullMQ Worker sends its commands on (runWorker creates it and hands
 * it to both). Redis runs one connection's commands in the order they were sent, so a finished
 * event sent before the processor returns is in the stream before BullMQ's completion of the job,
 * without the job waiting for a reply: a run's bookkeeping adds commands, not round trips.
 */
export class RunBook {
  readonly #keys: ReturnType<typeof redisKeys>;

  /** `ttlSeconds` is the events': they live as long as the task. */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly who: Pick<WorkerIdentity, 'role' | 'replica'>,
    private readonly ttlSeconds = TASK_EVENTS_TTL_SECONDS,
  ) {
    this.#keys = redisKeys(prefix);
  }

  /**
   * Appends a run's started event and reads whether the task had been cancelled, in one command.
   * Rejects with Redis's error: a run the ledger did not record must not act.
   */
  async start(taskId: string, subtaskId: string): Promise<StartOutcome> {
    const { role, replica } = this.who;
    const event = encodeTaskEvent({ type: 'subtask_started', taskId, subtaskId, role, replica });
    const cancelled = await startScript(
      this.redis,
      [this.#keys.taskEvents(taskId), this.#keys.cancelled(taskId)],
      [TASK_EVENT_FIELD, event, this.ttlSeconds, STREAM_MAX_LEN],
    );
    return cancelled ? 'cancelled' : 'running';
  }

  /** Appends a run's finished event; sent at once, in order with whatever is sent on the connection next. */
  async finish(taskId: string, subtaskId: string, end: RunEnd): Promise<void> {
    const { role, replica } = this.who;
    await appendTaskEvent(
      this.redis,
      this.prefix,
      { type: 'subtask_finished', taskId, subtaskId, role, replica, ...end },
      this.ttlSeconds,
    );
  }
}
