import type { ApiKeyRing } from '@flotilla/runtime/auth';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DashboardForbiddenError, DashboardUnauthorizedError } from './errors.js';

/** The key a request presents: `Bearer <token>`, or Basic auth whose password is the token (any user name). */
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

/** The admin key's name each let-through request came with: who an approval decision is recorded for. */
const operators = new WeakMap<FastifyRequest, string>();
export const operatorOf = (request: FastifyRequest): string | undefined => operators.get(request);

/**
 * An onRequest hook that lets through only requests carrying an admin key from the keys file
 * (API_KEYS_FILE, the orchestrator's): the queues hold every tenant's goals and results, so they
 * are the operator's to see, never a tenant's. Bearer suits scripts and proxies; Basic is what a
 * browser can send, so a 401 asks for it with `WWW-Authenticate` and the browser prompts (any user
 * name, the key as password). A valid key of the tasks scope is 403. The ring compares hashes in
 * constant time (see ApiKeyRing).
 */
export function adminKeyAuth(keys: ApiKeyRing) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const presented = presentedToken(request.headers.authorization);
    const entry = presented === undefined ? undefined : keys.find(presented);
    if (entry?.scope === 'admin') {
      operators.set(request, entry.name);
      return;
    }
    // Answered here rather than thrown: bull-board sets its own error handler on its routes, which
    // would turn the error into a 500-style body without the challenge header.
    if (entry) {
      const err = new DashboardForbiddenError();
      return reply.code(err.statusCode).send({ code: err.code, message: err.message });
    }
    const err = new DashboardUnauthorizedError();
    return reply
      .code(err.statusCode)
      .header('www-authenticate', 'Basic realm="flotilla dashboard", charset="UTF-8"')
      .send({ code: err.code, message: err.message });
  };
}
