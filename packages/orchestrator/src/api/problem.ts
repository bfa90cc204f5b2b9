import { isTransientError } from '@flotilla/runtime';
import type { FastifyError, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  BadRequestError,
  type FieldError,
  InvalidBodyError,
  PayloadTooLargeError,
  ProblemError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
} from '../errors.js';

export { PROBLEM_CONTENT_TYPE, sendProblem } from '@flotilla/runtime';
export type { Problem } from './schemas.js';

/** zod issues as `{ field, message }`; an unknown key is named itself, not its parent. */
export function fieldErrors(error: z.ZodError, root?: string): FieldError[] {
  const join = (path: readonly PropertyKey[]) => [root, ...path.map(String)].filter(Boolean).join('.') || 'body';
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((k) => ({ field: join([...issue.path, k]), message: 'is not a known field' }))
      : [{ field: join(issue.path), message: issue.message }],
  );
}

/** Parses a body with a schema; a mismatch is a 422 naming every bad field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body);
  if (!r.success) throw new InvalidBodyError(fieldErrors(r.error));
  return r.data;
}

/** Parses the query string against one schema per parameter; a mismatch is a 400 naming each (`query.limit`). */
export function parseQuery<T extends z.ZodRawShape>(shape: T, query: unknown): z.output<z.ZodObject<T>> {
  const r = z.object(shape).safeParse(query ?? {});
  if (!r.success) throw new BadRequestError('the query string is invalid', fieldErrors(r.error, 'query'));
  return r.data;
}

/**
 * JSON that is also I-JSON (RFC 7493): a lone surrogate in a string or key (an LLM's answer cut
 * mid-pair, a caller's field name echoed in an error) leaves as U+FFFD, not as a `\ud800` escape
 * that strict parsers refuse. Every JSON response and SSE data line goes through here.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string') return v.toWellFormed();
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).some((k) => !k.isWellFormed())) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.toWellFormed(), x]));
    }
    return v;
  });
}

/** Parses a path parameter or header; a mismatch is a 400 naming it (`path.id`, `header.idempotency-key`). */
export function parsePart<T extends z.ZodType>(schema: T, value: unknown, field: string): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new BadRequestError(`${field} is invalid`, [{ field, message: r.error.issues[0]?.message ?? 'invalid' }]);
  }
  return r.data;
}

/** Fastify's own errors that are the client's fault, mapped to our problems; the rest keep their 4xx status. */
function fromFastify(err: FastifyError, bodyLimit: number, contentType: string | undefined): ProblemError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new UnsupportedMediaTypeError(contentType);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BadRequestError('the body is empty; send a JSON object', [{ field: 'body', message: 'is empty' }]);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BadRequestError('the Content-Length header does not match the body', [
        { field: 'header.content-length', message: 'does not match the body' },
      ]);
  }
  // The JSON parser's errors (syntax, forbidden __proto__/constructor keys) carry statusCode 400.
  if (err instanceof SyntaxError || err.statusCode === 400) {
    return new BadRequestError(`the body is not valid JSON: ${err.message}`.slice(0, 300), [
      { field: 'body', message: 'is not valid JSON' },
    ]);
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new ProblemError(
      err.code ?? 'FLOTILLA_CLIENT_ERROR',
      err.statusCode,
      'Client error',
      err.message.slice(0, 300),
    );
  }
  return undefined;
}

/**
 * Renders any error as a problem document: a Redis outage is a 503 the client may retry; unknown
 * errors are a 500 that reveals nothing (the error itself is logged).
 */
export function toProblem(err: unknown, request: FastifyRequest, bodyLimit: number): ProblemError {
  if (err instanceof ProblemError) return err;
  if (isTransientError(err)) return new ServiceUnavailableError(undefined, err);
  const contentType = request.headers['content-type'];
  const mapped = err && typeof err === 'object' ? fromFastify(err as FastifyError, bodyLimit, contentType) : undefined;
  return (
    mapped ??
    new ProblemError('FLOTILLA_INTERNAL', 500, 'Internal server error', 'an unexpected error occurred; it was logged')
  );
}
