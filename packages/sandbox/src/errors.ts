import { FlotillaError } from '@flotilla/runtime';

/** One field-level problem, as RFC 9457 problem bodies list them: `{ field: 'files.a.txt', message }`. */
export interface FieldError {
  field: string;
  message: string;
}

/**
 * An error the HTTP API answers with an RFC 9457 problem document; status and the stable `code`
 * are data, so one error handler renders every case the same way.
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

/** 400: the body is not JSON, or a header is malformed. */
export class BadRequestError extends ProblemError {
  constructor(detail: string, errors?: FieldError[]) {
    super('FLOTILLA_BAD_REQUEST', 400, 'Bad request', detail, { errors });
  }
}

/** 422: the body is JSON but breaks the request schema or one of the service's caps. */
export class InvalidBodyError extends ProblemError {
  constructor(errors: FieldError[]) {
    super('FLOTILLA_INVALID_BODY', 422, 'Invalid request body', 'the request body does not match the schema', {
      errors,
    });
  }
}

/** 401: no bearer token, or the wrong one. */
export class UnauthorizedError extends ProblemError {
  constructor() {
    super('FLOTILLA_UNAUTHORIZED', 401, 'Unauthorized', 'a valid bearer token is required', {
      headers: { 'www-authenticate': 'Bearer realm="flotilla-sandbox"' },
    });
  }
}

/** 429: every run slot is busy; the caller should retry shortly. */
export class SandboxBusyError extends ProblemError {
  constructor(slots: number) {
    super('FLOTILLA_SANDBOX_BUSY', 429, 'Too many requests', `all ${slots} run slots are busy; retry shortly`, {
      headers: { 'retry-after': '1' },
    });
  }
}

/**
 * The host cannot isolate runs as configured (a missing tool, user namespaces off, an interpreter
 * the run's uid cannot read). The service does not start: it never runs code unisolated.
 */
export class SandboxSetupError extends FlotillaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOTILLA_SANDBOX_SETUP', message, options);
  }
}
