import type { FastifyError, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { BadRequestError, type FieldError, ProblemError } from '../errors.js';

export { PROBLEM_CONTENT_TYPE, type ProblemBody as Problem, sendProblem } from '@flotilla/runtime';

/** zod issues as `{ field, message }`; an unknown key is named itself, not its parent. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  const join = (path: readonly PropertyKey[]) => path.map(String).join('.') || 'body';
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((k) => ({ field: join([...issue.path, k]), message: 'is not a known field' }));
    // A bad record key (a file name): say why the name is bad, not just that it is.
    if (issue.code === 'invalid_key' && issue.issues[0])
      return [{ field: join(issue.path), message: `is not a valid name: ${issue.issues[0].message}` }];
    return [{ field: join(issue.path), message: issue.message }];
  });
}

/** Fastify's own errors that are the client's fault, as problems naming what was wrong. */
function fromFastify(err: FastifyError, bodyLimit: number, contentType: string | undefined): ProblemError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ProblemError(
        'FLOTILLA_PAYLOAD_TOO_LARGE',
        413,
        'Payload too large',
        `bodies are limited to ${bodyLimit} bytes`,
        {
          errors: [{ field: 'body', message: `is larger than ${bodyLimit} bytes` }],
        },
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new ProblemError(
        'FLOTILLA_UNSUPPORTED_MEDIA_TYPE',
        415,
        'Unsupported media type',
        `expected application/json, got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : 'no content type'}`,
        { errors: [{ field: 'header.content-type', message: 'must be application/json' }] },
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BadRequestError('the body is empty; send a JSON object', [{ field: 'body', message: 'is empty' }]);
  }
  // The JSON parser's errors (syntax, __proto__/constructor keys) carry statusCode 400.
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

/** Any error as a problem; unknown errors are a 500 that reveals nothing (the error itself is logged). */
export function toProblem(err: unknown, request: FastifyRequest, bodyLimit: number): ProblemError {
  if (err instanceof ProblemError) return err;
  const mapped =
    err && typeof err === 'object'
      ? fromFastify(err as FastifyError, bodyLimit, request.headers['content-type'])
      : undefined;
  return (
    mapped ??
    new ProblemError('FLOTILLA_INTERNAL', 500, 'Internal server error', 'an unexpected error occurred; it was logged')
  );
}
