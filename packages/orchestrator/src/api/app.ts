import rateLimit from '@fastify/rate-limit';
import type { RoleInfo } from '@flotilla/contracts';
import type { ApiKeyRing } from '@flotilla/runtime/auth';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { BadRequestError, ServiceUnavailableError, TooManyRequestsError } from '../errors.js';
import type { OperatorService } from '../operator/service.js';
import type { TaskService } from '../tasks/service.js';
import { apiKeyAuth } from './auth.js';
import { type EventStreamOptions, registerEventRoutes } from './events.js';
import { MCP_PATH, registerMcpRoute } from './mcp.js';
import { notFoundHandler } from './not-found.js';
import { openApiDocument, routeDrift } from './openapi.js';
import { registerOperatorRoutes } from './operator.js';
import { sendProblem, toJson, toProblem } from './problem.js';
import { registerTaskRoutes } from './tasks.js';

export interface AppDeps {
  tasks: TaskService;
  /** The operator's (admin) operations: kill switch, replicas, queues, failed jobs, any tenant's tasks. */
  operator: OperatorService;
  /** Live roles (the registry's listRoles, bound to this prefix). */
  roles: () => Promise<RoleInfo[]>;
  /** Commands connection; SSE clients each get a duplicate, and the rate limiter counts here. */
  redis: Redis;
  /** Logger for requests; default: fastify's own, silent. */
  log?: FastifyBaseLogger;
  /**
   * The API keys (API_KEYS_FILE): /v1 then requires `Authorization: Bearer <key>`, each key is a
   * tenant, and each route needs the scope it declares. Unset: no auth, one tenant (AUTH=off, which
   * the orchestrator allows only on loopback; tests).
   */
  keys?: ApiKeyRing;
  /** Largest accepted request body in bytes. Default 65536 (64 KiB). */
  bodyLimit?: number;
  /**
   * Per-client limit on /v1 (key: the client's tenant, else its IP), counted in Redis so every
   * replica shares one budget per tenant. Default 100 requests per 60 s; false turns it off.
   */
  rateLimit?: { max: number; timeWindowMs: number } | false;
  /** SSE heartbeat and client cap. Defaults: 15000 ms, 500 streams. */
  events?: Pick<EventStreamOptions, 'heartbeatMs' | 'maxClients'>;
  /**
   * Registers /livez, /readyz, /startupz, /metrics (the runtime's registerHealthRoutes); they stay
   * unauthenticated, and /openapi.json describes them only when this is set.
   */
  registerHealth?: (app: FastifyInstance) => void | Promise<void>;
  /** Reported in /openapi.json. Default 'unknown'. */
  version?: string;
  /** Longest a client may take to send a whole request. Default 30000 ms. */
  requestTimeoutMs?: number;
  /** Trust X-Forwarded-For for the client IP (behind a proxy). Default false. */
  trustProxy?: boolean;
  /** Asked before a new task is accepted; throws a 503 problem when the task store is too full. */
  admission?: { admit(): Promise<void> };
  /** Serve MCP at POST /mcp (docs/mcp.md), with the same keys, scope and rate limit as /v1. Default true. */
  mcp?: boolean;
}

export const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * The HTTP API, built but not listening (fastify's testing guide): tests call `inject()` or
 * `listen({ port: 0 })`, main.ts listens on PORT. Every error leaves as an RFC 9457 problem.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    ...(deps.log ? { loggerInstance: deps.log } : { logger: false }),
    bodyLimit,
    trustProxy: deps.trustProxy ?? false,
    // Reject both prototype-pollution vectors in JSON bodies outright (400) instead of stripping them.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Fastify's own drain answer is a bare JSON 503; /v1 answers a problem with Retry-After instead
    // (below), and the probes keep answering truthfully (readiness already says "draining").
    return503OnClosing: false,
    // A client that never finishes sending its request (slowloris, a lying Content-Length) is cut
    // off; SSE responses are unaffected (this bounds receiving the request, not the response).
    requestTimeout: deps.requestTimeoutMs ?? 30_000,
    routerOptions: { maxParamLength: 200 },
    // Every method a path answers is in the OpenAPI document and in Allow. Fastify's automatic
    // HEAD twin of each GET would be neither, and on the event stream it would hold a connection
    // open with no body to send.
    exposeHeadRoutes: false,
    // A URL the router can't decode (`/v1/tasks/%zz`) is refused before any route or error handler;
    // this keeps that refusal a problem document too.
    frameworkErrors: (err, request, reply) =>
      sendProblem(
        reply,
        request,
        new BadRequestError(`the URL is not valid: ${err.message}`.slice(0, 300), [
          { field: 'path', message: 'is not a valid URL (bad percent-encoding?)' },
        ]),
      ),
  });
  app.setReplySerializer((payload) => toJson(payload));

  // Every route, as registered; checked against the OpenAPI document once all are in (onReady).
  const routes: { method: string; url: string; scope: string | undefined }[] = [];
  app.addHook('onRoute', ({ method, url, config }) => {
    const scope = (config as { scope?: string } | undefined)?.scope;
    // MCP's own specification is the contract of /mcp (docs/mcp.md): the OpenAPI document, and the
    // contract test that reads it, cover the REST API only.
    if (url === MCP_PATH) return;
    for (const m of [method].flat()) routes.push({ method: m, url, scope });
    // Fail closed: a /v1 route that forgot to say which scope it needs would be open to any key.
    if (url.startsWith('/v1/') && !scope)
      throw new Error(`${[method].flat().join(',')} ${url} declares no scope (config.scope)`);
  });

  // Only JSON bodies: fastify's text/plain parser would hand a string to the schema, which then
  // reads as a 422 about the body instead of the honest 415 about its type.
  app.removeContentTypeParser('text/plain');

  const notFound = notFoundHandler(app);
  app.setErrorHandler((err, request, reply) => {
    // A request no route took fails on its method or path, not on what it carried: fastify parses
    // (and may refuse) the body before the not-found handler runs, but 404/405 is the answer.
    if (request.is404) return notFound(request, reply);
    const problem = toProblem(err, request, bodyLimit);
    if (problem.statusCode >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: problem.code, status: problem.statusCode }, 'request rejected');
    return sendProblem(reply, request, problem);
  });
  app.setNotFoundHandler(notFound);

  if (deps.registerHealth) await deps.registerHealth(app);

  const openapi = openApiDocument(deps.version ?? 'unknown', { probes: deps.registerHealth !== undefined });
  app.get('/openapi.json', async () => openapi);

  const auth = apiKeyAuth(deps.keys);
  let streams: { closeAll(): void } | undefined;
  let closing = false;
  const closed = new AbortController();
  // What /v1 and /mcp share: one rate limit per tenant, the drain refusal, the keys and their scopes.
  const guard = async (scope: FastifyInstance) => {
    if (deps.rateLimit !== false) {
      const { max, timeWindowMs } = deps.rateLimit ?? { max: 100, timeWindowMs: 60_000 };
      // Registered inside the API's plugins so health probes are never limited; before auth, so guessing tokens is limited too.
      await scope.register(rateLimit, {
        max,
        timeWindow: timeWindowMs,
        redis: deps.redis,
        nameSpace: `${deps.tasks.store.prefix}:ratelimit:`,
        keyGenerator: auth.clientKey,
        errorResponseBuilder: (_request, ctx) =>
          new TooManyRequestsError(`rate limit of ${ctx.max} requests exceeded; retry in ${ctx.after}`, ctx.ttl / 1000),
      });
    }
    scope.addHook('onRequest', async () => {
      if (closing) throw new ServiceUnavailableError('this replica is shutting down; retry (another one will answer)');
    });
    scope.addHook('onRequest', auth.hook);
  };
  if (deps.mcp !== false) {
    await app.register(async (mcp) => {
      await guard(mcp);
      registerMcpRoute(mcp, {
        tasks: deps.tasks,
        roles: deps.roles,
        admission: deps.admission,
        version: deps.version ?? 'unknown',
        redis: deps.redis,
        ownerOf: auth.ownerOf,
        closing: closed.signal,
      });
    });
  }
  await app.register(
    async (v1) => {
      await guard(v1);
      registerTaskRoutes(v1, deps.tasks, deps.roles, auth.ownerOf, deps.admission);
      // An admin key's name is the operator the audit names (auth.ownerOf reads the same key).
      registerOperatorRoutes(v1, deps.operator, auth.ownerOf);
      streams = registerEventRoutes(v1, {
        store: deps.tasks.store,
        redis: deps.redis,
        ownerOf: auth.ownerOf,
        ...deps.events,
      });
    },
    { prefix: '/v1' },
  );

  // A route the document doesn't describe (or the reverse) is a bug the contract test would find
  // later; refuse to start instead.
  app.addHook('onReady', async () => {
    const drift = routeDrift(openapi, routes);
    if (drift.length) throw new Error(`routes and /openapi.json disagree:\n${drift.join('\n')}`);
  });

  // Open event streams would hold server.close() open forever; end them first.
  app.addHook('preClose', async () => {
    closing = true;
    closed.abort();
    streams?.closeAll();
  });
  return app;
}
