import { FlotillaError } from '../errors.js';

/** An attempt ran past its tool's timeoutMs. Transient: worth another attempt. */
export class ToolTimeoutError extends FlotillaError {
  readonly retryable = true;

  constructor(tool: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('FLOTILLA_TOOL_TIMEOUT', `tool ${tool} timed out after ${timeoutMs} ms`, options);
  }
}

/**
 * An attempt was cut because the run's budget signal aborted (deadline or cancellation). Not the
 * tool's fault: it is neither retried nor counted against the tool's circuit breaker.
 */
export class ToolAbortedError extends FlotillaError {
  readonly retryable = false;

  constructor(tool: string, reason: unknown) {
    super('FLOTILLA_TOOL_ABORTED', `tool ${tool} was aborted by the run's budget`, { cause: reason });
  }
}

/**
 * Redis could not be asked whether a write already happened. The write is not attempted blind;
 * this is thrown (the one case the gateway throws) so the job fails transiently and is redelivered.
 */
export class IdempotencyUnavailableError extends FlotillaError {
  readonly retryable = true;

  constructor(key: string, cause: unknown) {
    super('FLOTILLA_IDEMPOTENCY_UNAVAILABLE', `cannot check idempotency key ${key}: Redis failed`, { cause });
  }
}

/** One line naming an error, for logs and outcome messages (never a stack). */
export const describeError = (err: unknown): string =>
  err instanceof Error ? `${err.name}: ${err.message}` : String(err);
