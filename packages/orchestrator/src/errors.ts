import { type FieldError, ProblemError } from '@flotilla/runtime';

// The problem documents every flotilla HTTP API shares live in the runtime; these are the API's own.
export {
  BadRequestError,
  type FieldError,
  InvalidBodyError,
  PayloadTooLargeError,
  ProblemError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from '@flotilla/runtime';

/** 403: the key is valid but its scope does not cover the operation (a task key on an operator's route). */
export class ForbiddenError extends ProblemError {
  constructor(detail: string) {
    super('FLOTILLA_FORBIDDEN', 403, 'Forbidden', detail);
  }
}

/** 404: no such task (or route), or a task of another tenant: the two are not told apart. */
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

/** 503: a dependency (Redis) is unreachable right now; the request may succeed when retried. */
export class ServiceUnavailableError extends ProblemError {
  constructor(detail = 'a backing service is unavailable; retry shortly', cause?: unknown) {
    super('FLOTILLA_UNAVAILABLE', 503, 'Service unavailable', detail, { headers: { 'retry-after': '2' }, cause });
  }
}

/** 429: the tenant already has as many queued and running tasks as it may (TENANT_MAX_OPEN_TASKS). */
export class TenantBusyError extends ProblemError {
  constructor(open: number, max: number) {
    super(
      'FLOTILLA_TOO_MANY_OPEN_TASKS',
      429,
      'Too many open tasks',
      `this client has ${open} queued or running tasks, its limit is ${max}; submit again when some have finished`,
      // A task takes seconds to minutes; a retry sooner would only be refused again.
      { headers: { 'retry-after': '10' } },
    );
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
