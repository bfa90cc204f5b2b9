import { getMetrics } from '@flotilla/runtime';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import { InvalidBodyError, ProblemError, SandboxBusyError } from '../errors.js';
import type { RunInput, RunResult } from '../run/runner.js';
import { bearerAuth } from './auth.js';
import { fieldErrors, sendProblem, toProblem } from './problem.js';
import { runLimits, runRequestSchema, type ServiceLimits } from './request.js';

export interface AppDeps {
  /** Runs a program (the Runner). */
  run: (input: RunInput) => Promise<RunResult>;
  limits: ServiceLimits;
  /** Every /v1 request must carry `Authorization: Bearer <token>`. */
  token: string;
  /** Runs at once; one more is refused with 429 at once. */
  maxConcurrent: number;
  /** Logger for requests; default: none. */
  log?: FastifyBaseLogger;
  /** Registers /livez, /readyz, /startupz, /metrics (the runtime's registerHealthRoutes), outside auth. */
  registerHealth?: (app: FastifyInstance) => void | Promise<void>;
  /** Longest a client may take to send a whole request. Default 30000 ms. */
  requestTimeoutMs?: number;
}

/** Hands out run slots 0..n-1; a root service runs slot k as uid UID_BASE+k, so no two runs share a uid. */
export class RunSlots {
  readonly #free: number[];
  readonly size: number;

  constructor(size: number) {
    this.size = size;
    this.#free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  get busy(): number {
    return this.size - this.#free.length;
  }

  acquire(): number | undefined {
    return this.#free.pop();
  }

  release(slot: number): void {
    this.#free.push(slot);
  }
}

/** Largest body: every cap full, with room for JSON escapes and the other fields. */
export function bodyLimitFor(limits: ServiceLimits): number {
  return 2 * (limits.maxCodeBytes + limits.maxStdinBytes + limits.maxFilesBytes) + 64 * 1024;
}

/**
 * The sandbox's HTTP API, built but not listening (fastify's testing guide). POST /v1/run runs a
 * program; every error leaves as an RFC 9457 problem naming the field at fault.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const bodyLimit = bodyLimitFor(deps.limits);
  const app = Fastify({
    ...(deps.log ? { loggerInstance: deps.log } : { logger: false }),
    bodyLimit,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // Probes arrive every few seconds; runs and rejections are logged by this app itself.
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: deps.requestTimeoutMs ?? 30_000,
  });
  // Only JSON bodies: a text body would otherwise reach the schema as a string.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err, request, reply) => {
    const problem = toProblem(err, request, bodyLimit);
    if (problem.statusCode >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: problem.code, status: problem.statusCode }, 'request rejected');
    return sendProblem(reply, request, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      new ProblemError(
        'FLOTILLA_NOT_FOUND',
        404,
        'Not found',
        `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`,
      ),
    ),
  );

  // While closing, every response ends its connection: a kept-alive connection that only goes idle
  // after close() began (a run answered during the drain) would otherwise hold the server open
  // until its keep-alive timeout. Connections idle at close() are closed by fastify itself.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });

  if (deps.registerHealth) await deps.registerHealth(app);

  const schema = runRequestSchema(deps.limits);
  const slots = new RunSlots(deps.maxConcurrent);
  const metrics = getMetrics();

  await app.register(
    async (v1) => {
      // A run slot is taken before the body is read, so a full server refuses at once without
      // buffering bodies it will not run. It is given back when the run has ended (never while a
      // killed run may still be dying: its uid is the slot's), or with the response when no run
      // began, or when the client leaves before one began.
      const held = new WeakMap<FastifyRequest, number>();
      const started = new WeakSet<FastifyRequest>();
      const release = (request: FastifyRequest) => {
        const slot = held.get(request);
        if (slot === undefined) return;
        held.delete(request);
        slots.release(slot);
      };

      v1.addHook('onRequest', bearerAuth(deps.token));
      v1.post(
        '/run',
        {
          preParsing: async (request, _reply, payload) => {
            const slot = slots.acquire();
            if (slot === undefined) {
              metrics.sandboxRuns.add(1, { language: 'unknown', outcome: 'refused' });
              throw new SandboxBusyError(slots.size);
            }
            held.set(request, slot);
            return payload;
          },
          onResponse: async (request) => release(request),
          onRequestAbort: async (request) => {
            if (!started.has(request)) release(request);
          },
        },
        async (request, reply) => {
          const parsed = schema.safeParse(request.body);
          if (!parsed.success) throw new InvalidBodyError(fieldErrors(parsed.error));
          const body = parsed.data;
          const slot = held.get(request);
          if (slot === undefined) throw new SandboxBusyError(slots.size); // the client left meanwhile
          started.add(request);
          // A caller that hangs up does not get to keep a run going.
          const abort = new AbortController();
          const onClose = () => {
            if (!reply.raw.writableFinished) abort.abort();
          };
          reply.raw.once('close', onClose);
          try {
            const { outcome, ...result } = await deps.run({
              language: body.language,
              code: body.code,
              stdin: body.stdin,
              files: body.files,
              limits: runLimits(body, deps.limits.max),
              slot,
              signal: abort.signal,
            });
            metrics.sandboxRuns.add(1, { language: body.language, outcome });
            metrics.sandboxRunDuration.record(result.durationMs / 1000, { language: body.language, outcome });
            request.log.info(
              { language: body.language, outcome, exitCode: result.exitCode, durationMs: result.durationMs, slot },
              'run finished',
            );
            return result;
          } catch (err) {
            metrics.sandboxRuns.add(1, { language: body.language, outcome: 'error' });
            throw err;
          } finally {
            reply.raw.off('close', onClose);
            release(request);
          }
        },
      );
    },
    { prefix: '/v1' },
  );
  return app;
}
