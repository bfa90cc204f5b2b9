import { z } from 'zod';

// The bodies of the probe routes, as schemas: routes.ts builds its replies against these types,
// and services with an OpenAPI document describe their probes with them.

/** GET /livez: 200 `ok`, or 503 `unhealthy` when the event loop lags (p99 delay since the last probe). */
export const LivezBody = z.object({
  status: z.enum(['ok', 'unhealthy']),
  eventLoopDelayMs: z.number().int().nonnegative(),
});

/** GET /startupz: 200 `started`, 503 `starting`. */
export const StartupzBody = z.object({ status: z.enum(['started', 'starting']) });

const CheckFailure = z.object({ check: z.string(), error: z.string() });

/**
 * GET /readyz: 200 `ready` with each check's result, or 503 `not_ready` with the reasons. A failing
 * optional check (a dependency the service degrades without, such as a worker's memory) keeps it
 * ready and is listed under `degraded`.
 */
export const ReadyzBody = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.record(z.string(), z.enum(['ok', 'failed'])).optional(),
  reasons: z.array(CheckFailure).optional(),
  degraded: z.array(CheckFailure).optional(),
});
