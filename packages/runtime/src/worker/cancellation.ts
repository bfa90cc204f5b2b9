import { redisKeys } from '@flotilla/contracts';
import type { Redis } from 'ioredis';

/**
 * Running subtasks by task id, so a cancellation published once (POST /v1/tasks/:id/cancel) aborts
 * every run of that task on this replica. A run that starts after the message checks the
 * task's `cancelled` key instead, so neither order loses a cancel.
 */
export class CancellationRegistry {
  readonly #running = new Map<string, Set<Cancellable>>();

  /**
   * Cancels `run` if `taskId` is cancelled until untrack(). The run itself (a Budget), not an
   * AbortController or a callback: a budget makes its signal only when something reads it, and
   * nothing is allocated per job to track it.
   */
  track(taskId: string, run: Cancellable): void {
    let set = this.#running.get(taskId);
    if (!set) {
      set = new Set();
      this.#running.set(taskId, set);
    }
    set.add(run);
  }

  untrack(taskId: string, run: Cancellable): void {
    const set = this.#running.get(taskId);
    if (!set?.delete(run)) return;
    if (set.size === 0) this.#running.delete(taskId);
  }

  cancel(taskId: string): number {
    const set = this.#running.get(taskId);
    if (!set) return 0;
    const reason = new TaskCancelledError(taskId);
    for (const run of set) run.cancel(reason);
    return set.size;
  }

  /** Subscribes `subscriber` (a dedicated connection) to the cancel channel. */
  async listen(subscriber: Redis, prefix: string): Promise<void> {
    const channel = redisKeys(prefix).cancelChannel;
    subscriber.on('message', (ch: string, taskId: string) => {
      if (ch === channel) this.cancel(taskId);
    });
    await subscriber.subscribe(channel);
  }
}

/** What a cancellation stops: a run's Budget. */
export interface Cancellable {
  cancel(reason: TaskCancelledError): void;
}

export class TaskCancelledError extends Error {
  readonly code = 'FLOTILLA_TASK_CANCELLED';
  constructor(readonly taskId: string) {
    super(`task ${taskId} was cancelled`);
    this.name = 'TaskCancelledError';
  }
}

/** Marks a task cancelled and tells every replica; what the orchestrator's cancel (POST /v1/tasks/:id/cancel) calls. */
export async function publishCancellation(redis: Redis, prefix: string, taskId: string, ttlSeconds = 7 * 24 * 3600) {
  const keys = redisKeys(prefix);
  await redis.set(keys.cancelled(taskId), '1', 'EX', ttlSeconds);
  await redis.publish(keys.cancelChannel, taskId);
}
