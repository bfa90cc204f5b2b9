import type { BUDGET_STOP_REASONS, BudgetLimits, StopReason, Usage } from '@flotilla/contracts';
import { DeadlineExceededError, RunCancelledError } from './errors.js';

/** Stop reasons a budget can produce: one per limit, plus `cancelled` when its parent signal aborts. */
export type BudgetStopReason = Extract<StopReason, (typeof BUDGET_STOP_REASONS)[number] | 'cancelled'>;

/** Metric kinds, as the `kind` label of the budget-used histogram. */
export type BudgetKind = 'steps' | 'tool_calls' | 'seconds' | 'tokens';

/** What is left of each limit; never negative. */
export interface BudgetRemaining {
  steps: number;
  toolCalls: number;
  tokens: number;
  /** Milliseconds until the deadline. */
  ms: number;
}

export interface BudgetOptions {
  /** Aborting it cancels the run: the budget's signal aborts with a `cancelled` stop reason. */
  signal?: AbortSignal;
  /**
   * Absolute deadline, epoch milliseconds. The earlier of this and `start + maxSeconds` wins.
   * Default: none (maxSeconds alone).
   */
  deadline?: number;
  /** Clock in epoch milliseconds. Default `Date.now`; tests inject one to read usage without waiting. */
  now?: () => number;
}

/**
 * One run's meter. Charges never throw for exceeding a limit: they return the stop reason, and the
 * first one hit sticks (later charges return it too), because a run ends with exactly one stop reason.
 */
export interface Budget {
  /** The limits this run got (already tightened). */
  readonly limits: Readonly<BudgetLimits>;
  /**
   * Aborts at the deadline (reason: DeadlineExceededError, stop reason `max_seconds`) or when the
   * parent signal aborts (RunCancelledError, `cancelled`). Pass it to every I/O call of the run so the
   * deadline cuts in-flight work. Count limits (steps, tool calls, tokens) do not abort it: those are
   * checked at the next charge, where the caller stops cleanly.
   */
  readonly signal: AbortSignal;
  /** The first limit hit, or null while the run is within budget. */
  readonly stopReason: BudgetStopReason | null;
  /** Charges one model turn. The (maxSteps+1)th charge is refused and returns `max_steps`. */
  chargeStep(): BudgetStopReason | null;
  /** Charges one tool invocation (retries inside the gateway are not charged). The (maxToolCalls+1)th returns `max_tool_calls`. */
  chargeToolCall(): BudgetStopReason | null;
  /** Adds tokens already spent; returns `max_tokens` once the total is above maxTokens. */
  chargeTokens(n: number): BudgetStopReason | null;
  /** Used so far. `ms` stops counting at dispose(). */
  usage(): Usage;
  /** Fraction of each limit used, 0..1, for the budget-used histogram. */
  ratios(): Record<BudgetKind, number>;
  remaining(): BudgetRemaining;
  /** Clears the deadline timer and the parent listener. Idempotent; the signal stays as it was. */
  dispose(): void;
}

// setTimeout treats delays above 2^31-1 ms as 1 ms; a long deadline is armed in hops instead.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Starts a run's budget now. `limits` should already be tightened (see tightenLimits). */
export function createBudget(limits: BudgetLimits, options: BudgetOptions = {}): Budget {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const deadlineAt = Math.min(startedAt + limits.maxSeconds * 1000, options.deadline ?? Number.POSITIVE_INFINITY);
  const windowMs = Math.max(0, deadlineAt - startedAt);

  const controller = new AbortController();
  let stopReason: BudgetStopReason | null = null;
  let steps = 0;
  let toolCalls = 0;
  let tokens = 0;
  let endedAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;

  const hit = (reason: BudgetStopReason): BudgetStopReason => {
    stopReason ??= reason;
    return stopReason;
  };

  const expire = () => {
    timer = undefined;
    const left = deadlineAt - now();
    if (left > 0) {
      arm(left);
      return;
    }
    hit('max_seconds');
    controller.abort(new DeadlineExceededError(windowMs));
  };
  const arm = (ms: number) => {
    timer = setTimeout(expire, Math.min(ms, MAX_TIMER_MS));
    // A budget must never be what keeps a process alive during shutdown.
    timer.unref();
  };

  const parent = options.signal;
  const onParentAbort = () => {
    if (controller.signal.aborted) return;
    hit('cancelled');
    controller.abort(new RunCancelledError(parent?.reason));
  };

  if (parent?.aborted) onParentAbort();
  else if (windowMs <= 0) expire();
  else {
    arm(windowMs);
    parent?.addEventListener('abort', onParentAbort, { once: true });
  }

  const elapsed = () => (endedAt ?? now()) - startedAt;

  return {
    limits: Object.freeze({ ...limits }),
    signal: controller.signal,
    get stopReason() {
      return stopReason;
    },
    chargeStep() {
      if (stopReason) return stopReason;
      if (steps >= limits.maxSteps) return hit('max_steps');
      steps++;
      return null;
    },
    chargeToolCall() {
      if (stopReason) return stopReason;
      if (toolCalls >= limits.maxToolCalls) return hit('max_tool_calls');
      toolCalls++;
      return null;
    },
    chargeTokens(n) {
      // Tokens are already spent when they are reported, so they always count, even past a stop.
      if (Number.isFinite(n) && n > 0) tokens += Math.ceil(n);
      if (stopReason) return stopReason;
      if (tokens > limits.maxTokens) return hit('max_tokens');
      return null;
    },
    usage: () => ({ steps, toolCalls, tokens, ms: elapsed() }),
    ratios: () => ({
      steps: ratio(steps, limits.maxSteps),
      tool_calls: ratio(toolCalls, limits.maxToolCalls),
      seconds: windowMs > 0 ? ratio(elapsed(), windowMs) : 1,
      tokens: ratio(tokens, limits.maxTokens),
    }),
    remaining: () => ({
      steps: Math.max(0, limits.maxSteps - steps),
      toolCalls: Math.max(0, limits.maxToolCalls - toolCalls),
      tokens: Math.max(0, limits.maxTokens - tokens),
      ms: Math.max(0, deadlineAt - now()),
    }),
    dispose() {
      if (endedAt !== undefined) return;
      endedAt = now();
      if (timer) clearTimeout(timer);
      timer = undefined;
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

const ratio = (used: number, max: number) => Math.min(1, used / max);
