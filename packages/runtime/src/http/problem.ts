import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
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

/** 413: the body exceeds the server's body limit. */
export class PayloadTooLargeError extends ProblemError {
  constructor(limit: number) {
    super('FLOTILLA_PAYLOAD_TOO_LARGE', 413, 'Payload too large', `request bodies are limited to ${limit} bytes`, {
      errors: [{ field: 'body', message: `is larger than ${limit} bytes` }],
    });
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

/**
 * Fastify's own errors that are the client's fault (body too large, wrong content type, bad JSON,
 * a lying Content-Length), as problems naming what was wrong; other 4xx keep their status.
 * Undefined for anything else, which is the service's to map (or a 500).
 */
export function fastifyClientProblem(
  err: unknown,
  request: FastifyRequest,
  bodyLimit: number,
): ProblemError | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as FastifyError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new UnsupportedMediaTypeError(request.headers['content-type']);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BadRequestError('the body is empty; send a JSON object', [{ field: 'body', message: 'is empty' }]);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BadRequestError('the Content-Length header does not match the body', [
        { field: 'header.content-length', message: 'does not match the body' },
      ]);
  }
  // The JSON parser's errors (syntax, forbidden __proto__/constructor keys) carry statusCode 400.
  if (e instanceof SyntaxError || e.statusCode === 400) {
    return new BadRequestError(`the body is not valid JSON: ${e.message}`.slice(0, 300), [
      { field: 'body', message: 'is not valid JSON' },
    ]);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ProblemError(e.code ?? 'FLOTILLA_CLIENT_ERROR', e.statusCode, 'Client error', e.message.slice(0, 300));
  }
  return undefined;
}

/** 500 for what nobody mapped: it reveals nothing (the error itself is logged). */
export const internalProblem = () =>
  new ProblemError('FLOTILLA_INTERNAL', 500, 'Internal server error', 'an unexpected error occurred; it was logged');

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
