import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type ICancellationContext,
  type IPolicy,
  IsolatedCircuitError,
  type RetryPolicy,
  retry,
  TimeoutStrategy,
  timeout,
} from 'cockatiel';
import { isTransientError } from '../errors.js';
import { type BackoffOptions, jitteredBackoff } from './backoff.js';
import type { AnyTool, ToolLog } from './define.js';
import { describeError, ToolAbortedError, ToolTimeoutError } from './errors.js';

// The cockatiel policies a gateway composes per call as wrap(retry, breaker, timeout): the retry is
// outermost so every attempt passes the breaker and gets its own timeout.

/** Whether an error of `tool` is transient: worth another attempt, counted by its breaker. */
export const retryableBy = (tool: AnyTool): ((err: unknown) => boolean) => tool.retryable ?? isTransientError;

/**
 * A tool's circuit breaker: opens after `threshold` consecutive failing attempts, lets one test call
 * through after `halfOpenAfterMs`. Only failures the tool calls transient count: a bad argument says
 * nothing about the dependency's health, and a run's own deadline is not the tool's fault.
 */
export function toolBreaker(
  tool: AnyTool,
  { threshold, halfOpenAfterMs }: { threshold: number; halfOpenAfterMs: number },
): CircuitBreakerPolicy {
  const counts = (err: Error) => !(err instanceof ToolAbortedError) && retryableBy(tool)(err);
  return circuitBreaker(handleWhen(counts), {
    breaker: new ConsecutiveBreaker(threshold),
    halfOpenAfter: halfOpenAfterMs,
  });
}

/**
 * One call's retry policy: up to `tool.retries` more attempts, full-jitter exponential backoff, only
 * for errors the tool calls retryable, never for an open breaker or a budget abort, and not once
 * `stopped()` says so. Each retry is logged with its computed delay.
 */
export function toolRetry(
  tool: AnyTool,
  { backoff, stopped, log }: { backoff: BackoffOptions; stopped: () => boolean; log: ToolLog },
): RetryPolicy {
  const retryable = retryableBy(tool);
  const policy = retry(
    handleWhen(
      (err) =>
        !(
          err instanceof BrokenCircuitError ||
          err instanceof IsolatedCircuitError ||
          err instanceof ToolAbortedError
        ) &&
        !stopped() &&
        retryable(err),
    ),
    { maxAttempts: tool.retries, backoff: jitteredBackoff(backoff) },
  );
  policy.onRetry((e) => {
    const err = 'error' in e ? describeError(e.error) : 'rejected result';
    log.warn({ attempt: e.attempt, delayMs: e.delay, err }, 'tool attempt failed; retrying');
  });
  return policy;
}

/**
 * cockatiel's aggressive timeout, with its errors told apart: the attempt's own timeout becomes a
 * (transient) ToolTimeoutError, and an abort that came from the run's budget becomes ToolAbortedError,
 * which neither the retry policy nor the breaker counts. Both surface from cockatiel as the same
 * TaskCancelledError. One instance per call: attempts run one after another, never at once.
 */
export function attributedTimeout(tool: AnyTool): IPolicy<ICancellationContext> {
  const inner = timeout(tool.timeoutMs, TimeoutStrategy.Aggressive);
  return {
    _altReturn: undefined as never,
    onSuccess: inner.onSuccess,
    onFailure: inner.onFailure,
    async execute(fn, signal) {
      let timedOut = false;
      const listener = inner.onTimeout(() => {
        timedOut = true;
      });
      try {
        return await inner.execute((ctx) => fn(ctx), signal);
      } catch (err) {
        if (signal?.aborted) throw new ToolAbortedError(tool.name, signal.reason);
        if (timedOut) throw new ToolTimeoutError(tool.name, tool.timeoutMs, { cause: err });
        throw err;
      } finally {
        listener.dispose();
      }
    },
  };
}
