import { z } from 'zod';
import type { StopReason } from './stop-reason.js';

/**
 * Stop reasons that are the image's fault. Budget stops, policy denials, the kill switch, invalid
 * input and cancellation are the caller's or the operator's doing: a canary must not be rolled back
 * because a task asked too much or an operator stopped a tool. `model_error` counts: an image's
 * prompts and model settings are what decide whether the model's replies can be used.
 */
export const FAULT_STOP_REASONS = [
  'runtime_error',
  'tool_error',
  'model_error',
] as const satisfies readonly StopReason[];

/**
 * How one job attempt ended, as a worker records it per role (the rollout's figures): a run that
 * completed (its stop reason), or an attempt that threw and failed the job (`failed`; BullMQ retries
 * it, possibly on another replica).
 */
export type AttemptEnd = StopReason | 'failed';

/** Whether an attempt's end counts against the image that ran it: a thrown attempt or a fault stop. */
export const isFaultEnd = (end: AttemptEnd): boolean =>
  end === 'failed' || (FAULT_STOP_REASONS as readonly string[]).includes(end);

/** One image version's attempts of a role over a window (GET /v1/admin/queues/{role}/versions). */
export const VersionFigures = z.object({
  version: z.string().describe('SERVICE_VERSION of the replicas that ran the attempts (the image tag)'),
  jobs: z.number().int().nonnegative().describe('Attempts that ended in the window, completed or failed'),
  errors: z
    .number()
    .int()
    .nonnegative()
    .describe('Attempts that failed (threw) or completed with a fault stop reason (runtime_error, tool_error)'),
  errorRate: z.number().min(0).max(1).describe('errors / jobs; 0 without jobs'),
  p50: z.number().nonnegative().nullable().describe('Median attempt time in ms; null without jobs'),
  p95: z.number().nonnegative().nullable().describe('95th percentile attempt time in ms; null without jobs'),
  replicas: z.array(z.string()).describe('Replicas that ended attempts in the window'),
});
export type VersionFigures = z.infer<typeof VersionFigures>;

export const VersionFiguresList = z.object({
  role: z.string(),
  since: z.string().describe('Start of the window, ISO 8601'),
  versions: z.array(VersionFigures),
});
export type VersionFiguresList = z.infer<typeof VersionFiguresList>;
