import type { FastifyReply, FastifyRequest } from 'fastify';
import { FlotillaError } from '../errors.js';

/** One field-level problem, as RFC 9457 problem bodies list them: `{ field: 'budget.maxSteps', message }`. */
export interface FieldError {
  field: string;
  message: string;
}

/** An RFC 9457 problem document, as every flotilla HTTP error response carries it. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  errors?: FieldError[];
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * An error an HTTP API answers with a problem document. The status and the stable `code` are data
 * on the error, so one error handler per service renders every case the same way.
 */
export class ProblemError extends FlotillaError {
  readonly statusCode: number;
  readonly title: string;
  readonly errors: FieldError[] | undefined;
  /** Extra response headers (WWW-Authenticate, Retry-After, Allow). */
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

/** 422: the body is JSON but breaks the request schema (or one of the service's caps). */
export class InvalidBodyError extends ProblemError {
  constructor(errors: FieldError[]) {
    super('FLOTILLA_INVALID_BODY', 422, 'Invalid request body', 'the request body does not match the schema', {
      errors,
    });
  }
}

/** 401: a bearer token is required and none (or a wrong one) was sent. */
export class UnauthorizedError extends ProblemError {
  constructor({ detail = 'a valid bearer token is required', realm = 'flotilla' } = {}) {
    super('FLOTILLA_UNAUTHORIZED', 401, 'Unauthorized', detail, {
      headers: { 'www-authenticate': `Bearer realm="${realm}"` },
    });
  }
}

/** Sends `problem` as its problem document, with its status and headers. */
export function sendProblem(reply: FastifyReply, request: FastifyRequest, problem: ProblemError): FastifyReply {
  const body: ProblemBody = {
    type: `urn:flotilla:problem:${problem.code
      .toLowerCase()
      .replace(/^flotilla_/, '')
      .replaceAll('_', '-')}`,
    title: problem.title,
    status: problem.statusCode,
    detail: problem.message,
    instance: request.url.split('?')[0]?.slice(0, 200) ?? '/',
    code: problem.code,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
  return reply.code(problem.statusCode).headers(problem.headers).type(PROBLEM_CONTENT_TYPE).send(body);
}
