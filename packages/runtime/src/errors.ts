/**
 * Base of every error flotilla throws on purpose: a stable `code` callers can switch on
 * (like fastify's FST_ERR_* codes), and the original error kept as `cause`.
 */
export class FlotillaError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

// Socket-level failures that say nothing about the request itself; another attempt may well work.
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Whether another attempt may succeed: network errors, timeouts, Redis connections that gave up on
 * a command, and any error that says `retryable: true` (LLM vendor 429/5xx after their own retries,
 * a tool's timeout). An explicit `retryable: false` anywhere in the cause chain wins. The one
 * predicate behind tool retries, job retries (a transient error re-delivers the job) and the API's
 * 503s, so "transient" means the same thing everywhere.
 */
export function isTransientError(err: unknown): boolean {
  // undici's fetch wraps the socket error: TypeError('fetch failed', { cause }).
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const flagged = (e as { retryable?: unknown }).retryable;
    if (flagged === false) return false;
    if (flagged === true) return true;
    // AbortSignal.timeout's reason; ioredis' error once a command has used up its reconnect attempts.
    if (e.name === 'TimeoutError' || e.name === 'MaxRetriesPerRequestError') return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  }
  return false;
}
