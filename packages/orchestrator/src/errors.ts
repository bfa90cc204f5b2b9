import { FlotillaError } from '@flotilla/runtime';

/** One field-level problem, as RFC 9457 problem bodies list them: `{ field: 'budget.maxSteps', message }`. */
export interface FieldError {
  field: string;
  message: string;
}

/**
 * An error the HTTP API answers with an RFC 9457 problem document. The status and the stable
 * `code` are data on the error, so the one error handler can render every case the same way.
 */
export class ProblemError extends FlotillaError {
  readonly statusCode: number;
  readonly title: string;
  readonly errors: FieldError[] | undefined;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  readonly headers: Record<string, string>;

  constructor(
    code: string,
    statusCode: number,
    title: string,
    detail: string,
    options: { errors?: FieldError[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(code, detail, { cause: options.cause });
    this.statusCode = statusCode;
    this.title = title;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
  }
}

/** 400: a parameter or header is malformed, or the body is not valid JSON. */
export class BadRequestError extends ProblemError {
  constructor(detail: string, errors?: FieldError[], cause?: unknown) {
    super('FLOTILLA_BAD_REQUEST', 400, 'Bad request', detail, { errors, cause });
  }
}

/** 422: the body is JSON but does not satisfy the request schema. */
export class InvalidBodyError extends ProblemError {
  constructor(errors: FieldError[]) {
    super('FLOTILLA_INVALID_BODY', 422, 'Invalid request body', 'the request body does not match the schema', {
      errors,
    });
  }
}

/** 401: /v1 needs a bearer token and none (or a wrong one) was sent. */
export class UnauthorizedError extends ProblemError {
  constructor(detail = 'a valid bearer token is required') {
    super('FLOTILLA_UNAUTHORIZED', 401, 'Unauthorized', detail, {
      headers: { 'www-authenticate': 'Bearer realm="flotilla"' },
    });
  }
}

/** 404: no such task (or route). */
export class NotFoundError extends ProblemError {
  constructor(detail: string) {
    super('FLOTILLA_NOT_FOUND', 404, 'Not found', detail);
  }
}

/** 405: the path exists, the method doesn't; Allow lists the ones that do (RFC 9110 §15.5.6). */
export class MethodNotAllowedError extends ProblemError {
  constructor(method: string, allowed: readonly string[]) {
    super(
      'FLOTILLA_METHOD_NOT_ALLOWED',
      405,
      'Method not allowed',
      `${method.slice(0, 20)} is not allowed here; use ${allowed.join(', ')}`,
      { headers: { allow: allowed.join(', ') } },
    );
  }
}

/** 409: an idempotency key reused with a different request, or an action the task's state forbids. */
export class ConflictError extends ProblemError {
  constructor(code: string, detail: string, errors?: FieldError[]) {
    super(code, 409, 'Conflict', detail, { errors });
  }
}

/** 413: the body exceeds BODY_LIMIT_BYTES. */
export class PayloadTooLargeError extends ProblemError {
  constructor(limit: number) {
    super('FLOTILLA_PAYLOAD_TOO_LARGE', 413, 'Payload too large', `request bodies are limited to ${limit} bytes`);
  }
}

/** 415: only application/json bodies are accepted. */
export class UnsupportedMediaTypeError extends ProblemError {
  constructor(contentType: string | undefined) {
    super(
      'FLOTILLA_UNSUPPORTED_MEDIA_TYPE',
      415,
      'Unsupported media type',
      `expected application/json, got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : 'no content type'}`,
      { errors: [{ field: 'header.content-type', message: 'must be application/json' }] },
    );
  }
}

/** 503: a dependency (Redis) is unreachable right now; the request may succeed when retried. */
export class ServiceUnavailableError extends ProblemError {
  constructor(detail = 'a backing service is unavailable; retry shortly', cause?: unknown) {
    super('FLOTILLA_UNAVAILABLE', 503, 'Service unavailable', detail, { headers: { 'retry-after': '2' }, cause });
  }
}

/** 429: the client exceeded its request rate, or too many event streams are open. */
export class TooManyRequestsError extends ProblemError {
  constructor(detail: string, retryAfterSeconds: number) {
    super('FLOTILLA_RATE_LIMITED', 429, 'Too many requests', detail, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}
