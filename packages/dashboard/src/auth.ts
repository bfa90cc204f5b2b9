import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DashboardUnauthorizedError } from './errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The token a request presents: `Bearer <token>`, or Basic auth whose password is the token (any user name). */
export function presentedToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic ([A-Za-z0-9+/=]{1,8192})$/i.exec(header);
  if (!basic?.[1]) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/**
 * An onRequest hook that lets through only requests carrying `token`. Bearer suits scripts and
 * proxies; Basic is what a browser can send, so a 401 asks for it with `WWW-Authenticate` and the
 * browser prompts (any user name, the token as password). Both sides are hashed before the
 * constant-time compare, so neither the token's bytes nor its length leak through timing.
 */
export function tokenAuth(token: string) {
  const expected = digest(token);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const presented = presentedToken(request.headers.authorization);
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return;
    // Answered here rather than thrown: bull-board sets its own error handler on its routes, which
    // would turn the error into a 500-style body without the challenge header.
    const err = new DashboardUnauthorizedError();
    return reply
      .code(err.statusCode)
      .header('www-authenticate', 'Basic realm="flotilla dashboard", charset="UTF-8"')
      .send({ code: err.code, message: err.message });
  };
}
