import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.js';
import { DEFAULT_OWNER } from '../tasks/store.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Bearer-token check for /v1. Both sides are hashed before the constant-time compare, so neither
 * the token's bytes nor its length leak through timing.
 */
export function bearerAuth(token: string | undefined) {
  const expected = token ? digest(token) : undefined;

  /** The caller's token when it is the configured one, else undefined. */
  const validToken = (request: FastifyRequest): string | undefined => {
    if (!expected) return undefined;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(header) : null;
    const presented = match?.[1];
    return presented !== undefined && timingSafeEqual(digest(presented), expected) ? presented : undefined;
  };

  return {
    enabled: expected !== undefined,
    validToken,
    /** onRequest hook: rejects with 401 unless no token is configured or the right one was sent. */
    hook: async (request: FastifyRequest) => {
      if (expected && validToken(request) === undefined) throw new UnauthorizedError();
    },
    /**
     * Whose tasks a request sees (GET /v1/tasks) and creates. One deployment token today, so one
     * owner; per-tenant API keys map each key to its tenant here.
     */
    ownerOf: (_request: FastifyRequest): string => DEFAULT_OWNER,
    /** A rate-limit key: the token's hash for authenticated clients (one budget per client), else the IP. */
    clientKey: (request: FastifyRequest): string => {
      const t = validToken(request);
      return t ? `token:${digest(t).toString('hex').slice(0, 32)}` : `ip:${request.ip}`;
    },
  };
}
