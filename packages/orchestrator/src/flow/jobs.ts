import { type Job, type JobsOptions, UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import type { TaskStore } from '../tasks/store.js';

/** Data of a planning job and of an aggregation (flow parent) job: just the task id; the rest is in Redis. */
export const TaskJobData = z.object({ taskId: z.string().min(1).max(200) });
export type TaskJobData = z.infer<typeof TaskJobData>;

/** Transient failures (a Redis blip, a vendor 5xx past its own retries) get three tries, backing off from 1 s. */
export const RETRY_OPTS = { attempts: 3, backoff: { type: 'exponential', delay: 1000 } } satisfies JobsOptions;

/**
 * The aggregation job's tries. The answer gets RETRY_OPTS.attempts of them, as any job; the rest
 * only retry keeping a completed task's answer in memory, backing off to about two minutes in all,
 * so a Chroma restart does not lose it.
 */
export const AGGREGATE_RETRY_OPTS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
} satisfies JobsOptions;

/** Marks the task failed (from any non-terminal status) with its reason, on the task and its stream. */
export async function failTask(store: TaskStore, taskId: string, reason: string): Promise<boolean> {
  const t = await store.transition(taskId, {
    from: ['queued', 'planning', 'running', 'aggregating'],
    to: 'failed',
    fields: { error: reason },
    event: { type: 'failed', taskId, reason },
  });
  return t.applied;
}

/**
 * Whether this was the job's last delivery, so a failure now is final and the task must say so.
 * `tries` caps the job's attempts for one phase of it (the aggregation's answer).
 */
export function isLastAttempt(job: Job, tries = Number.POSITIVE_INFINITY): boolean {
  return job.attemptsMade + 1 >= Math.min(tries, job.opts.attempts ?? 1);
}

/** Errors a retry cannot fix: the vendor said so (LlmError.retryable === false), or BullMQ's marker. */
export function isPermanent(err: unknown): boolean {
  return (
    err instanceof UnrecoverableError || (err instanceof Error && (err as { retryable?: unknown }).retryable === false)
  );
}

/** Parses a job's data or fails the job without retries: a malformed job never becomes valid. */
export function taskIdOf(job: Job): string {
  const parsed = TaskJobData.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`invalid_input: ${z.prettifyError(parsed.error)}`);
  return parsed.data.taskId;
}
