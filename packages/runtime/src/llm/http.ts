import {
  LlmAbortError,
  LlmBadResponseError,
  LlmContextOverflowError,
  LlmRequestRejectedError,
  LlmUnavailableError,
  LlmUnusableOutputError,
} from './errors.js';
import type { LlmClient } from './types.js';

/** How failed attempts are retried. Every field has a production default; tests inject `sleep`/`random`. */
export interface RetryOptions {
  /** Retries after the first attempt for 429, 5xx, timeouts and connection errors. Default 3 (LLM_MAX_RETRIES). */
  maxRetries?: number;
  /** First backoff step; doubles each retry. Default 500 ms. */
  baseDelayMs?: number;
  /** Longest single wait, Retry-After included: a vendor asking for more is treated as unavailable. Default 60 s. */
  maxDelayMs?: number;
  /** Per-attempt timeout, so a hung connection becomes a retry instead of eating the whole budget. Default 120 s. */
  timeoutMs?: number;
  /** Called before each wait with the delay actually chosen (tests assert on it instead of wall time). */
  onRetry?: (info: RetryInfo) => void;
  /** Waits `ms` or rejects with the signal's reason. Default: an abortable timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** [0, 1) source for jitter. Default Math.random. */
  random?: () => number;
}

export interface RetryInfo {
  /** The attempt that just failed, from 1. */
  attempt: number;
  delayMs: number;
  /** HTTP status of the failed attempt; undefined for timeouts and connection errors. */
  status: number | undefined;
  /** Retry-After the vendor sent, in ms, when it sent one. */
  retryAfterMs: number | undefined;
}

export interface PostJsonRequest {
  provider: LlmClient['provider'];
  url: string;
  headers: Record<string, string>;
  body: unknown;
  signal: AbortSignal | undefined;
  /** Epoch ms past which no retry is started (the budget deadline). */
  deadline: number | undefined;
  /** Strings that must never reach an error message (the API key). */
  secrets: readonly string[];
  /** Pulls a human message out of a vendor error body. */
  errorMessage: (body: unknown) => string | undefined;
  retry: RetryOptions;
}

export interface PostJsonResult {
  json: unknown;
  attempts: number;
}

/**
 * A request refused because the conversation is longer than the model's window, as llama.cpp
 * ("exceeds the available context size", type exceed_context_size_error), OpenAI
 * (context_length_exceeded) and Anthropic ("prompt is too long") say it. Matched on the raw body.
 */
const CONTEXT_OVERFLOW =
  /exceed_context_size|exceeds the available context size|context_length_exceeded|maximum context length|prompt is too long/i;

/** A server error caused by what the model wrote, not by the server: llama.cpp's tool-call parser. */
const UNPARSABLE_MODEL_OUTPUT = /model produced output that does not match|failed to parse tool call/i;

const defaults = { maxRetries: 3, baseDelayMs: 500, maxDelayMs: 60_000, timeoutMs: 120_000 };

/**
 * Parses Retry-After, which RFC 9110 allows as delay-seconds or an HTTP date; OpenAI also sends
 * the finer `retry-after-ms`. Returns undefined when absent or unreadable.
 */
export function parseRetryAfter(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Exponential backoff with "equal jitter" (half fixed, half random) so replicas that failed
 * together do not retry together; a vendor's Retry-After is a floor we never undercut.
 */
export function backoffDelay(attempt: number, retryAfterMs: number | undefined, opts: RetryOptions = {}): number {
  const base = opts.baseDelayMs ?? defaults.baseDelayMs;
  const max = opts.maxDelayMs ?? defaults.maxDelayMs;
  const random = opts.random ?? Math.random;
  const exp = Math.min(max, base * 2 ** (attempt - 1));
  const jittered = Math.round(exp / 2 + (random() * exp) / 2);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, Math.min(jittered, max));
}

/** Replaces every secret (and anything shaped like a vendor key) so vendor messages are safe to log. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('[REDACTED]');
  // Vendors echo a masked key ("sk-abc***xyz"); even a fragment is nobody's business.
  return out.replace(/\b(sk-[A-Za-z0-9_*.-]{6,}|sk-ant-[A-Za-z0-9_*.-]{6,})/g, '[REDACTED]');
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

class AttemptFailure {
  constructor(
    readonly message: string,
    readonly status: number | undefined,
    readonly retryAfterMs: number | undefined,
    readonly cause?: unknown,
  ) {}
}

/**
 * POSTs JSON to a vendor and returns the parsed 2xx body, retrying what a retry can fix.
 * Plain fetch on purpose: two small wire formats do not justify two vendor SDKs (each with its
 * own retry loop, timeouts and telemetry that would fight ours), and fetch takes our AbortSignal.
 */
export async function postJson(req: PostJsonRequest): Promise<PostJsonResult> {
  const maxRetries = req.retry.maxRetries ?? defaults.maxRetries;
  const timeoutMs = req.retry.timeoutMs ?? defaults.timeoutMs;
  const maxDelay = req.retry.maxDelayMs ?? defaults.maxDelayMs;
  const sleep = req.retry.sleep ?? abortableSleep;
  const caller = req.signal ?? new AbortController().signal;
  const payload = JSON.stringify(req.body);

  for (let attempt = 1; ; attempt++) {
    if (caller.aborted) throw new LlmAbortError(req.provider, caller.reason);
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([caller, timeout]);
    let failure: AttemptFailure;
    try {
      const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: payload, signal });
      const text = await res.text();
      if (res.ok) {
        try {
          return { json: JSON.parse(text), attempts: attempt };
        } catch (err) {
          throw new LlmBadResponseError(req.provider, `${req.provider} returned malformed JSON (HTTP ${res.status})`, {
            status: res.status,
            cause: err,
          });
        }
      }
      const vendorMessage = vendorError(text, req.errorMessage) ?? res.statusText;
      const message = scrub(`${req.provider} HTTP ${res.status}: ${vendorMessage}`, req.secrets);
      if (res.status !== 429 && res.status < 500) {
        if (CONTEXT_OVERFLOW.test(text)) throw new LlmContextOverflowError(req.provider, res.status, message);
        throw new LlmRequestRejectedError(req.provider, res.status, message);
      }
      // The same prompt would most likely make the model write the same thing: the agent loop asks
      // for a repair instead of spending retries (and the budget's seconds) on it.
      if (res.status >= 500 && UNPARSABLE_MODEL_OUTPUT.test(vendorMessage)) {
        throw new LlmUnusableOutputError(req.provider, message, {
          status: res.status,
          hint: 'Your last reply could not be read as a tool call or an answer.',
        });
      }
      failure = new AttemptFailure(message, res.status, parseRetryAfter(res.headers));
    } catch (err) {
      if (caller.aborted) throw new LlmAbortError(req.provider, caller.reason);
      if (
        err instanceof LlmBadResponseError ||
        err instanceof LlmRequestRejectedError ||
        err instanceof LlmUnusableOutputError
      )
        throw err;
      const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : scrub(errorText(err), req.secrets);
      failure = new AttemptFailure(`${req.provider} request failed: ${why}`, undefined, undefined, err);
    }

    const unavailable = (extra = '') =>
      new LlmUnavailableError(
        req.provider,
        `${failure.message}${extra} (after ${attempt} attempt${attempt === 1 ? '' : 's'})`,
        {
          status: failure.status,
          attempts: attempt,
          cause: failure.cause,
        },
      );
    if (attempt > maxRetries) throw unavailable();
    if (failure.retryAfterMs !== undefined && failure.retryAfterMs > maxDelay) {
      throw unavailable(`; Retry-After ${failure.retryAfterMs} ms exceeds the ${maxDelay} ms we wait`);
    }
    const delayMs = backoffDelay(attempt, failure.retryAfterMs, req.retry);
    // Waiting past the deadline only to be aborted wastes the wait; fail now with the real cause.
    if (req.deadline !== undefined && Date.now() + delayMs >= req.deadline) {
      throw unavailable('; the next retry would start after the deadline');
    }
    req.retry.onRetry?.({ attempt, delayMs, status: failure.status, retryAfterMs: failure.retryAfterMs });
    try {
      await sleep(delayMs, caller);
    } catch {
      throw new LlmAbortError(req.provider, caller.reason);
    }
  }
}

function vendorError(text: string, pick: (body: unknown) => string | undefined): string | undefined {
  try {
    return pick(JSON.parse(text));
  } catch {
    return text ? text.slice(0, 500) : undefined;
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // undici hides the useful part (ECONNREFUSED, ...) in `cause`.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
