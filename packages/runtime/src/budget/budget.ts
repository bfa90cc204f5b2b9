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
  /**
   * Time the run already spent before this budget was made, ms: a run resumed after it parked for
   * an approval goes on with the seconds it had left, not a fresh window. Default 0.
   */
  spentMs?: number;
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
  /**
   * Cancels the run from outside (a task cancellation): stop reason `cancelled` unless a limit was
   * hit first, and the signal aborts with RunCancelledError. The same as aborting `options.signal`;
   * a no-op after dispose().
   */
  cancel(reason?: unknown): void;
  /** Clears the deadline timer and the parent listener. Idempotent; the signal stays as it was. */
  dispose(): void;
}

/** Starts a run's budget now. `limits` should already be tightened (see tightenLimits). */
export function createBudget(limits: BudgetLimits, options: BudgetOptions = {}): Budget {
  return new RunBudget(limits, options);
}

/**
 * A class rather than a closure-per-method object, and lazy in its costly parts: the
 * AbortController, the deadline timer and its callback exist only once something reads `signal`
 * (anything that does I/O under the budget), and the deadline is otherwise checked when read; the
 * parent listener only when there is a parent. Every job makes one of these, and most runs of a
 * cheap handler never need any of it (pnpm bench).
 */
class RunBudget implements Budget {
  readonly limits: Readonly<BudgetLimits>;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #deadlineAt: number;
  readonly #windowMs: number;
  readonly #parent: AbortSignal | undefined;
  #controller: AbortController | undefined;
  #abortReason: Error | undefined;
  #stopReason: BudgetStopReason | null = null;
  #steps = 0;
  #toolCalls = 0;
  #tokens = 0;
  #endedAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onParentAbort: (() => void) | undefined;
  #onDeadline: (() => void) | undefined;

  constructor(limits: BudgetLimits, options: BudgetOptions) {
    this.limits = Object.freeze({ ...limits });
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now() - Math.max(0, options.spentMs ?? 0);
    this.#deadlineAt = Math.min(
      this.#startedAt + limits.maxSeconds * 1000,
      options.deadline ?? Number.POSITIVE_INFINITY,
    );
    this.#windowMs = Math.max(0, this.#deadlineAt - this.#startedAt);
    const parent = options.signal;
    this.#parent = parent;
    if (parent?.aborted) this.cancel(parent.reason);
    else if (parent) {
      this.#onParentAbort = () => this.cancel(parent.reason);
      parent.addEventListener('abort', this.#onParentAbort, { once: true });
    }
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (!this.#abortReason && this.#endedAt === undefined) this.#expire();
      if (this.#abortReason) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  get stopReason(): BudgetStopReason | null {
    if (!this.#stopReason) this.#checkDeadline();
    return this.#stopReason;
  }

  chargeStep(): BudgetStopReason | null {
    const stop = this.stopReason;
    if (stop) return stop;
    if (this.#steps >= this.limits.maxSteps) return this.#hit('max_steps');
    this.#steps++;
    return null;
  }

  chargeToolCall(): BudgetStopReason | null {
    const stop = this.stopReason;
    if (stop) return stop;
    if (this.#toolCalls >= this.limits.maxToolCalls) return this.#hit('max_tool_calls');
    this.#toolCalls++;
    return null;
  }

  chargeTokens(n: number): BudgetStopReason | null {
    // Tokens are already spent when they are reported, so they always count, even past a stop.
    if (Number.isFinite(n) && n > 0) this.#tokens += Math.ceil(n);
    const stop = this.stopReason;
    if (stop) return stop;
    if (this.#tokens > this.limits.maxTokens) return this.#hit('max_tokens');
    return null;
  }

  usage() {
    return { steps: this.#steps, toolCalls: this.#toolCalls, tokens: this.#tokens, ms: this.#elapsed() };
  }

  ratios(): Record<BudgetKind, number> {
    return {
      steps: ratio(this.#steps, this.limits.maxSteps),
      tool_calls: ratio(this.#toolCalls, this.limits.maxToolCalls),
      seconds: this.#windowMs > 0 ? ratio(this.#elapsed(), this.#windowMs) : 1,
      tokens: ratio(this.#tokens, this.limits.maxTokens),
    };
  }

  remaining(): BudgetRemaining {
    return {
      steps: Math.max(0, this.limits.maxSteps - this.#steps),
      toolCalls: Math.max(0, this.limits.maxToolCalls - this.#toolCalls),
      tokens: Math.max(0, this.limits.maxTokens - this.#tokens),
      ms: Math.max(0, this.#deadlineAt - this.#now()),
    };
  }

  cancel(reason?: unknown): void {
    if (this.#abortReason || this.#endedAt !== undefined) return;
    this.#hit('cancelled');
    this.#abort(new RunCancelledError(reason));
  }

  dispose(): void {
    if (this.#endedAt !== undefined) return;
    this.#endedAt = this.#now();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#onParentAbort) this.#parent?.removeEventListener('abort', this.#onParentAbort);
  }

  #elapsed(): number {
    return (this.#endedAt ?? this.#now()) - this.#startedAt;
  }

  #hit(reason: BudgetStopReason): BudgetStopReason {
    this.#stopReason ??= reason;
    return this.#stopReason;
  }

  #abort(reason: Error): void {
    if (this.#abortReason) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  /** Over the deadline while running: stop with max_seconds. */
  #checkDeadline(): boolean {
    if (this.#endedAt !== undefined || this.#abortReason || this.#now() < this.#deadlineAt) return false;
    this.#hit('max_seconds');
    this.#abort(new DeadlineExceededError(this.#windowMs));
    return true;
  }

  /** Stops now if the deadline has passed, else arms the timer for it. */
  #expire(): void {
    this.#timer = undefined;
    if (this.#checkDeadline() || this.#endedAt !== undefined || this.#abortReason) return;
    this.#onDeadline ??= () => this.#expire();
    // setTimeout treats delays above 2^31-1 ms as 1 ms; a long deadline is armed in hops instead.
    this.#timer = setTimeout(this.#onDeadline, Math.min(this.#deadlineAt - this.#now(), MAX_TIMER_MS));
    // A budget must never be what keeps a process alive during shutdown.
    this.#timer.unref();
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

const ratio = (used: number, max: number) => Math.min(1, used / max);
