import { redisKeys, type StopReason, type Usage, type WorkerIdentity } from '@flotilla/contracts';
import type { Redis } from 'ioredis';
import { appendTaskEvent, TASK_EVENTS_TTL_SECONDS } from './events.js';

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
 * The connection should have ioredis' `enableAutoPipelining` on: the writes of every job that
 * starts or finishes in the same event-loop turn then leave in one socket write, so a worker
 * running many jobs pays about one round trip per turn rather than one per job, with no batching
 * of our own.
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
   * Appends a run's started event, and reads whether the task had been cancelled, in one round
   * trip. Rejects with Redis's error: a run the ledger did not record must not act.
   */
  async start(taskId: string, subtaskId: string): Promise<StartOutcome> {
    const { role, replica } = this.who;
    const [, cancelled] = await Promise.all([
      appendTaskEvent(
        this.redis,
        this.prefix,
        { type: 'subtask_started', taskId, subtaskId, role, replica },
        this.ttlSeconds,
      ),
      this.redis.exists(this.#keys.cancelled(taskId)),
    ]);
    return cancelled ? 'cancelled' : 'running';
  }

  /** Appends a run's finished event. */
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
