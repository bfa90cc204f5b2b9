import { stopReasonOf } from '../budget/index.js';
import { FlotillaError } from '../errors.js';
import type { LlmClient } from './types.js';

type Provider = LlmClient['provider'];

/**
 * Base of every error an LLM call throws on purpose. `retryable` tells a job runner whether
 * trying the whole job again later can help (BullMQ retry) or not (UnrecoverableError).
 */
export class LlmError extends FlotillaError {
  readonly provider: Provider | undefined;
  readonly retryable: boolean;
  /** HTTP status of the last attempt, when the vendor answered at all. */
  readonly status: number | undefined;

  constructor(
    code: string,
    message: string,
    options: { provider?: Provider; retryable: boolean; status?: number; cause?: unknown },
  ) {
    super(code, message, { cause: options.cause });
    this.provider = options.provider;
    this.retryable = options.retryable;
    this.status = options.status;
  }
}

/** The vendor answered 2xx with a body we cannot read (bad JSON, wrong shape, unparsable tool arguments). */
export class LlmBadResponseError extends LlmError {
  /** Tokens the vendor reported for the unusable answer: they were spent, so budgets still count them. */
  readonly usage: { promptTokens: number; completionTokens: number } | undefined;

  constructor(
    provider: Provider,
    message: string,
    options: { status?: number; cause?: unknown; usage?: { promptTokens: number; completionTokens: number } } = {},
  ) {
    super('FLOTILLA_LLM_BAD_RESPONSE', message, {
      provider,
      retryable: false,
      status: options.status,
      cause: options.cause,
    });
    this.usage = options.usage;
  }
}

/**
 * The model wrote something its server or we cannot use: a tool call in no format the server
 * parses (llama.cpp answers HTTP 500 "The model produced output that does not match the expected
 * ... format"), or tool arguments that are not JSON. Not a transport fault, so sending the same
 * request again is not tried; the agent loop gives the model one turn to repair it instead
 * (`hint` says what to fix), then stops with `model_error`.
 */
export class LlmUnusableOutputError extends LlmError {
  /** What the model is told went wrong with its reply, in words it can act on. */
  readonly hint: string;
  readonly usage: { promptTokens: number; completionTokens: number } | undefined;

  constructor(
    provider: Provider,
    message: string,
    options: {
      hint: string;
      status?: number;
      cause?: unknown;
      usage?: { promptTokens: number; completionTokens: number };
    },
  ) {
    super('FLOTILLA_LLM_UNUSABLE_OUTPUT', message, {
      provider,
      retryable: false,
      status: options.status,
      cause: options.cause,
    });
    this.hint = options.hint;
    this.usage = options.usage;
  }
}

/**
 * The vendor refused the request (4xx other than 429: bad key, unknown model, invalid schema).
 * Sending it again cannot help. The message is the vendor's, with any key scrubbed out.
 */
export class LlmRequestRejectedError extends LlmError {
  constructor(provider: Provider, status: number, message: string, code = 'FLOTILLA_LLM_REQUEST_REJECTED') {
    super(code, message, { provider, retryable: false, status });
  }
}

/**
 * The conversation no longer fits the model's context window (llama.cpp's exceed_context_size_error,
 * OpenAI's context_length_exceeded, Anthropic's "prompt is too long"). The agent loop can shorten
 * what it sends once; past that the run stops with `model_error`.
 */
export class LlmContextOverflowError extends LlmRequestRejectedError {
  constructor(provider: Provider, status: number, message: string) {
    super(provider, status, message, 'FLOTILLA_LLM_CONTEXT_OVERFLOW');
  }
}

/**
 * The vendor stayed unavailable (429, 5xx, timeouts, connection errors) through every retry we
 * could afford. Retryable: the same job may well succeed a little later.
 */
export class LlmUnavailableError extends LlmError {
  readonly attempts: number;

  constructor(provider: Provider, message: string, options: { status?: number; attempts: number; cause?: unknown }) {
    super('FLOTILLA_LLM_UNAVAILABLE', message, {
      provider,
      retryable: true,
      status: options.status,
      cause: options.cause,
    });
    this.attempts = options.attempts;
  }
}

/** LLM settings that cannot work together (a named vendor without a key, a compatible server without a model). */
export class LlmConfigError extends LlmError {
  /** The variable an operator must set or fix. */
  readonly variable: string;
  /** What is wrong with it, without the variable's name. */
  readonly problem: string;

  constructor(variable: string, problem: string) {
    super('FLOTILLA_LLM_CONFIG', `${variable}: ${problem}`, { retryable: false });
    this.variable = variable;
    this.problem = problem;
  }
}

/**
 * The caller's signal fired (budget deadline, task cancelled, shutdown). `name` is 'AbortError' so
 * generic abort checks work, and `reason` is the signal's own reason (the budget's carries its stop
 * reason). Retryable unless the reason is a budget stop (deadline passed, run cancelled): a job cut
 * by a shutdown should run again on another replica, one past its deadline should not.
 */
export class LlmAbortError extends LlmError {
  readonly reason: unknown;

  constructor(provider: Provider, reason: unknown) {
    const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
    super('FLOTILLA_LLM_ABORTED', `LLM call aborted: ${why}`, {
      provider,
      retryable: stopReasonOf(reason) === undefined,
      cause: reason,
    });
    this.name = 'AbortError';
    this.reason = reason;
  }
}
