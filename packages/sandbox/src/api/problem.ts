import { fastifyClientProblem, internalProblem } from '@flotilla/runtime';
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { type FieldError, ProblemError } from '../errors.js';

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

/** Any error as a problem; unknown errors are a 500 that reveals nothing (the error itself is logged). */
export function toProblem(err: unknown, request: FastifyRequest, bodyLimit: number): ProblemError {
  if (err instanceof ProblemError) return err;
  return fastifyClientProblem(err, request, bodyLimit) ?? internalProblem();
}
