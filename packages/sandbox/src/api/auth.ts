import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The onRequest hook for /v1: a 401 unless the request carries `Authorization: Bearer <token>`.
 * Both sides are hashed before the constant-time compare, so neither the token's bytes nor its
 * length leak through timing. There is no "auth off": the service needs a token to start.
 */
export function bearerAuth(token: string) {
  const expected = digest(token);
  return async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    const presented = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(header)?.[1] : undefined;
    if (presented === undefined || !timingSafeEqual(digest(presented), expected))
      throw new UnauthorizedError({ realm: 'flotilla-sandbox' });
  };
}
