import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MethodNotAllowedError, NotFoundError } from '../errors.js';
import { sendProblem } from './problem.js';

/**
 * The methods fastify's router answers on this URL. Asking the router itself (findRoute matches
 * a concrete path the way a request is matched) keeps Allow equal to the routes as registered.
 */
export function allowedMethods(app: FastifyInstance, url: string): string[] {
  return app.supportedMethods.filter((method) => app.findRoute({ method, url }) !== null).sort();
}

/**
 * Requests no route took: 405 with Allow when the path exists under other methods (RFC 9110
 * §15.5.6), else 404. Both are problem documents like every other error.
 */
export function notFoundHandler(app: FastifyInstance) {
  return (request: FastifyRequest, reply: FastifyReply) => {
    const allowed = allowedMethods(app, request.url);
    const problem = allowed.length
      ? new MethodNotAllowedError(request.method, allowed)
      : new NotFoundError(`no route ${request.method.slice(0, 20)} ${request.url.split('?')[0]?.slice(0, 200)}`);
    return sendProblem(reply, request, problem);
  };
}
