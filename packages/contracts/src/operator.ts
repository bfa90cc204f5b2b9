import { z } from 'zod';

/** A role's queue as the operator sees it (GET /v1/admin/queues; `flotilla queues`). */
export const QueueStats = z.object({
  role: z.string(),
  waiting: z.number().int().nonnegative(),
  active: z.number().int().nonnegative(),
  delayed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  completed: z.number().int().nonnegative(),
  throughput: z.object({
    /** Completed jobs since BullMQ's metrics began for this queue. */
    completedTotal: z.number().int().nonnegative(),
    failedTotal: z.number().int().nonnegative(),
    /** BullMQ's per-minute completed counts, newest first, at most RECENT_MINUTES. */
    completedPerMinute: z.array(z.number().int().nonnegative()),
    failedPerMinute: z.array(z.number().int().nonnegative()),
  }),
  /** Processing time (processedOn to finishedOn) of the latest completed jobs; null without any. */
  jobMs: z
    .object({ p50: z.number().nonnegative(), p95: z.number().nonnegative(), sample: z.number().int().positive() })
    .nullable(),
});
export type QueueStats = z.infer<typeof QueueStats>;
