import { ToolTimeoutError } from './errors.js';

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
 * The default retry (and breaker) filter: network errors, timeouts, and any error that says
 * `retryable: true`. An explicit `retryable: false` always wins. Tools with their own `retryable`
 * can build on it: `retryable: (e) => isTransientError(e) || isRateLimited(e)`.
 */
export function isTransientError(err: unknown): boolean {
  // undici's fetch wraps the socket error: TypeError('fetch failed', { cause }).
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const flagged = (e as { retryable?: unknown }).retryable;
    if (flagged === false) return false;
    if (flagged === true || e instanceof ToolTimeoutError) return true;
    if (e.name === 'TimeoutError') return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  }
  return false;
}
