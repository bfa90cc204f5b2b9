import { fastifyClientProblem, internalProblem, isTransientError } from '@flotilla/runtime';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  BadRequestError,
  type FieldError,
  InvalidBodyError,
  ProblemError,
  ServiceUnavailableError,
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

/**
 * Renders any error as a problem document: a Redis outage is a 503 the client may retry; unknown
 * errors are a 500 that reveals nothing (the error itself is logged).
 */
export function toProblem(err: unknown, request: FastifyRequest, bodyLimit: number): ProblemError {
  if (err instanceof ProblemError) return err;
  if (isTransientError(err)) return new ServiceUnavailableError(undefined, err);
  return fastifyClientProblem(err, request, bodyLimit) ?? internalProblem();
}
