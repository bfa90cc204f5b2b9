import { afterEach, describe, expect, it } from 'vitest';
import { createLifecycle, type Lifecycle } from '../lifecycle/index.js';
import { createLogger } from '../logger/index.js';
import { getMetrics, initTelemetry, shutdownTelemetry } from '../telemetry/index.js';
import type { ReadinessCheck } from './checks.js';
import type { HealthRoutesOptions } from './routes.js';
import { buildHealthServer, type HealthApp } from './server.js';

const log = createLogger({ service: 'health-test', level: 'silent' });
let app: HealthApp | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

function build(options: Partial<HealthRoutesOptions> = {}) {
  app = buildHealthServer({ log, checks: [], ...options });
  return app;
}

function readyLifecycle(): Lifecycle {
  const lifecycle = createLifecycle({ log });
  lifecycle.markReady();
  return lifecycle;
}

const passing = (name: string): ReadinessCheck => ({ name, check: async () => {} });

describe('/readyz', () => {
  it('is not ready while starting, ready once marked, not ready while draining', async () => {
    const lifecycle = createLifecycle({ log });
    let release: () => void = () => {};
    lifecycle.onShutdown('hold', () => new Promise<void>((r) => (release = r)), 'drain');
    const server = build({ lifecycle, checks: [passing('redis')] });

    let res = await server.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'not_ready',
      reasons: [{ check: 'lifecycle', error: 'service is starting' }],
    });

    lifecycle.markReady();
    res = await server.inject('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { redis: 'ok' } });

    const stopping = lifecycle.shutdown('test');
    res = await server.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json().reasons).toEqual([{ check: 'lifecycle', error: 'service is draining' }]);
    release();
    await stopping;
  });

  it('names each failing check with its error, scrubbing credentials', async () => {
    const server = build({
      lifecycle: readyLifecycle(),
      checks: [
        passing('memory'),
        {
          name: 'redis',
          check: async () => Promise.reject(new Error('connect ECONNREFUSED redis://:hunter2-pass@redis:6379')),
        },
      ],
    });
    const res = await server.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'not_ready',
      reasons: [{ check: 'redis', error: 'connect ECONNREFUSED redis://:[REDACTED]@redis:6379' }],
      checks: { memory: 'ok', redis: 'failed' },
    });
  });

  it('stays ready when only an optional check fails, and lists it as degraded', async () => {
    const down = (optional: boolean): ReadinessCheck => ({
      name: optional ? 'chroma' : 'redis',
      optional,
      check: async () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.7:8000')),
    });
    const degraded = [{ check: 'chroma', error: 'connect ECONNREFUSED 10.0.0.7:8000' }];
    let res = await build({ lifecycle: readyLifecycle(), checks: [passing('redis'), down(true)] }).inject('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { redis: 'ok', chroma: 'failed' }, degraded });

    // A required check still decides: with it failing too, the service is not ready, and says both.
    res = await build({ lifecycle: readyLifecycle(), checks: [down(false), down(true)] }).inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not_ready', reasons: [{ check: 'redis' }], degraded });
  });

  it('fails a check that does not answer in time, and aborts its signal', async () => {
    let aborted = false;
    const server = build({
      lifecycle: readyLifecycle(),
      checkTimeoutMs: 30,
      checks: [
        {
          name: 'stuck',
          check: (signal) =>
            new Promise(() => {
              signal.addEventListener('abort', () => {
                aborted = true;
              });
            }),
        },
      ],
    });
    const res = await server.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json().reasons).toEqual([{ check: 'stuck', error: 'no answer within 30 ms' }]);
    expect(aborted).toBe(true);
  });

  it('runs checks in parallel', async () => {
    // Each check waits for the other to have started: only concurrent checks can both pass.
    let startA: () => void = () => {};
    let startB: () => void = () => {};
    const aStarted = new Promise<void>((r) => (startA = r));
    const bStarted = new Promise<void>((r) => (startB = r));
    const server = build({
      lifecycle: readyLifecycle(),
      checkTimeoutMs: 5_000,
      checks: [
        {
          name: 'a',
          check: async () => {
            startA();
            await bStarted;
          },
        },
        {
          name: 'b',
          check: async () => {
            startB();
            await aStarted;
          },
        },
      ],
    });
    const res = await server.inject('/readyz');
    expect(res.json()).toEqual({ status: 'ready', checks: { a: 'ok', b: 'ok' } });
  });

  it('honours isDraining for services without a lifecycle', async () => {
    let draining = false;
    const server = build({ checks: [passing('x')], isDraining: () => draining });
    expect((await server.inject('/readyz')).statusCode).toBe(200);
    draining = true;
    expect((await server.inject('/readyz')).statusCode).toBe(503);
  });
});

describe('/startupz and /livez', () => {
  it('reports started once ready, and stays started while draining', async () => {
    const lifecycle = createLifecycle({ log });
    const server = build({ lifecycle });
    expect((await server.inject('/startupz')).statusCode).toBe(503);
    lifecycle.markReady();
    expect((await server.inject('/startupz')).json()).toEqual({ status: 'started' });
    await lifecycle.shutdown();
    expect((await server.inject('/startupz')).statusCode).toBe(200);
  });

  it('is live while the event loop keeps up, and not after it was blocked', async () => {
    const server = build({ maxEventLoopDelayMs: 100 });
    const ok = await server.inject('/livez');
    expect(ok.statusCode).toBe(200);
    expect(ok.json().status).toBe('ok');

    // The monitor skips the interval in which it was reset (by the probe above): let that pass first.
    await new Promise((r) => setTimeout(r, 50));
    const until = Date.now() + 400;
    while (Date.now() < until) {
      // Block the event loop, as a runaway synchronous loop would.
    }
    // Give the delay monitor one tick to record the blocked interval.
    await new Promise((r) => setTimeout(r, 50));
    const blocked = await server.inject('/livez');
    expect(blocked.statusCode).toBe(503);
    expect(blocked.json().eventLoopDelayMs).toBeGreaterThan(100);
  });
});

describe('/metrics', () => {
  afterEach(() => shutdownTelemetry());

  it('serves Prometheus text', async () => {
    await initTelemetry({ serviceName: 'health-test', env: {} });
    getMetrics().toolCalls.add(1, { tool: 'web_fetch', outcome: 'ok' });
    const res = await build().inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/^flotilla_tool_calls_total\{tool="web_fetch",outcome="ok"[^}]*\} 1$/m);
  });
});
