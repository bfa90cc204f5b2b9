import type { StopReason } from '@flotilla/contracts';
import { FlotillaError } from '../errors.js';

/** Abort reason of a budget's signal when the wall-clock deadline passes. */
export class DeadlineExceededError extends FlotillaError {
  readonly stopReason = 'max_seconds' as const;

  constructor(limitMs: number) {
    super('FLOTILLA_DEADLINE_EXCEEDED', `run exceeded its deadline (${Math.round(limitMs)} ms)`);
  }
}

/** Abort reason of a budget's signal when its parent signal aborts (task or job cancelled, shutdown). */
export class RunCancelledError extends FlotillaError {
  readonly stopReason = 'cancelled' as const;

  constructor(cause: unknown) {
    super('FLOTILLA_RUN_CANCELLED', 'run was cancelled', { cause });
  }
}

/**
 * The stop reason an abort reason (or an error thrown because of one) carries, if any. fetch and
 * most Node APIs reject with `signal.reason` itself, so this works on what they throw too.
 */
export function stopReasonOf(reason: unknown): StopReason | undefined {
  // Bounded: cause chains are user data and may be cyclic.
  let current = reason;
  for (let depth = 0; depth < 8 && current !== undefined; depth++) {
    if (current instanceof DeadlineExceededError || current instanceof RunCancelledError) return current.stopReason;
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}
