import { monitorEventLoopDelay } from 'node:perf_hooks';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyTypeProvider,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { z } from 'zod';
import type { Lifecycle } from '../lifecycle/index.js';
import { redactText } from '../logger/index.js';
import { renderPrometheusMetrics } from '../telemetry/index.js';
import type { ReadinessCheck } from './checks.js';
import type { LivezBody, ReadyzBody, StartupzBody } from './schemas.js';

type Livez = z.output<typeof LivezBody>;
type Startupz = z.output<typeof StartupzBody>;
type Readyz = z.output<typeof ReadyzBody>;

export interface HealthRoutesOptions {
  /** Readiness checks, run in parallel on every GET /readyz. */
  checks: readonly ReadinessCheck[];
  /** Readiness and startup follow its state: not ready while starting or draining. */
  lifecycle?: Pick<Lifecycle, 'state' | 'started'>;
  /** Extra "stop sending me work" signal for services without a lifecycle. */
  isDraining?: () => boolean;
  /** Time each check gets before it counts as failed. Default 2000 ms. */
  checkTimeoutMs?: number;
  /**
   * /livez fails when the event loop's p99 delay since the previous probe exceeds this: the
   * process answers, but too late to do its work. Default 1000 ms.
   */
  maxEventLoopDelayMs?: number;
}

/** Why readiness failed, one entry per failing check. */
export interface NotReadyReason {
  check: string;
  error: string;
}

class CheckTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

async function runCheck(c: ReadinessCheck, defaultTimeoutMs: number): Promise<string | undefined> {
  const timeoutMs = c.timeoutMs ?? defaultTimeoutMs;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new CheckTimeout(timeoutMs));
    }, timeoutMs);
  });
  try {
    await Promise.race([Promise.resolve().then(() => c.check(controller.signal)), timeout]);
    return undefined;
  } catch (err) {
    // Error text goes to anyone who can reach the port: scrub credentials (a URL with a password).
    return redactText(err instanceof Error ? err.message : String(err));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Adds /livez, /readyz, /startupz and /metrics to an existing fastify app, so a service with
 * an HTTP API serves its probes on the same port (register them outside any auth hook).
 */
export function registerHealthRoutes<Logger extends FastifyBaseLogger, TypeProvider extends FastifyTypeProvider>(
  app: FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger, TypeProvider>,
  options: HealthRoutesOptions,
): void {
  const { checks, lifecycle, isDraining, checkTimeoutMs = 2_000, maxEventLoopDelayMs = 1_000 } = options;
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  app.addHook('onClose', async () => loopDelay.disable());

  app.get('/livez', async (_req, reply) => {
    // Nanoseconds to milliseconds; reset so each probe judges only the time since the last one.
    const p99Ms = loopDelay.count > 0 ? loopDelay.percentile(99) / 1e6 : 0;
    loopDelay.reset();
    const eventLoopDelayMs = Math.round(p99Ms);
    if (p99Ms > maxEventLoopDelayMs)
      return reply.code(503).send({ status: 'unhealthy', eventLoopDelayMs } satisfies Livez);
    return { status: 'ok', eventLoopDelayMs } satisfies Livez;
  });

  app.get('/startupz', async (_req, reply) => {
    if (lifecycle && !lifecycle.started) return reply.code(503).send({ status: 'starting' } satisfies Startupz);
    return { status: 'started' } satisfies Startupz;
  });

  app.get('/readyz', async (_req, reply) => {
    if (lifecycle && lifecycle.state !== 'ready') {
      return reply.code(503).send({
        status: 'not_ready',
        reasons: [{ check: 'lifecycle', error: `service is ${lifecycle.state}` }],
      } satisfies Readyz);
    }
    if (isDraining?.()) {
      return reply.code(503).send({
        status: 'not_ready',
        reasons: [{ check: 'lifecycle', error: 'service is draining' }],
      } satisfies Readyz);
    }
    const errors = await Promise.all(checks.map((c) => runCheck(c, checkTimeoutMs)));
    const results: Record<string, 'ok' | 'failed'> = {};
    const reasons: NotReadyReason[] = [];
    const degraded: NotReadyReason[] = [];
    checks.forEach((c, i) => {
      const error = errors[i];
      results[c.name] = error === undefined ? 'ok' : 'failed';
      if (error !== undefined) (c.optional ? degraded : reasons).push({ check: c.name, error });
    });
    const more = degraded.length ? { degraded } : {};
    if (reasons.length > 0)
      return reply.code(503).send({ status: 'not_ready', reasons, checks: results, ...more } satisfies Readyz);
    return { status: 'ready', checks: results, ...more } satisfies Readyz;
  });

  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await renderPrometheusMetrics();
    return reply.type(contentType).send(body);
  });
}
