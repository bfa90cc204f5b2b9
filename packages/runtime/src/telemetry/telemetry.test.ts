import { setTimeout as tick } from 'node:timers/promises';
import { Traceparent } from '@flotilla/contracts';
import { context, trace } from '@opentelemetry/api';
import { BullMQOtel } from 'bullmq-otel';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bullmqTelemetry,
  getMetrics,
  getTracer,
  initTelemetry,
  injectTraceparent,
  isTracing,
  renderPrometheusMetrics,
  shutdownTelemetry,
  withExtractedContext,
} from './index.js';
import { installInMemoryTracing } from './testing.js';

describe('trace context in the SubtaskEnvelope', () => {
  it('joins the parent trace after a traceparent round-trip, across awaits', async () => {
    const exporter = installInMemoryTracing();
    const tracer = getTracer();
    const parent = tracer.startSpan('POST /v1/tasks');
    const carrier = context.with(trace.setSpan(context.active(), parent), () => injectTraceparent());
    parent.end();
    expect(Traceparent.safeParse(carrier.traceparent).success).toBe(true);

    // As the worker would: a different async path, only the carrier in hand.
    await withExtractedContext(carrier, async () => {
      await tick(1);
      await tracer.startActiveSpan('subtask', async (span) => {
        await tick(1);
        tracer.startSpan('llm call').end();
        span.end();
      });
    });

    const spans = exporter.getFinishedSpans();
    const byName = new Map(spans.map((s) => [s.name, s]));
    const { traceId, spanId } = parent.spanContext();
    expect(byName.get('subtask')?.spanContext().traceId).toBe(traceId);
    expect(byName.get('subtask')?.parentSpanContext?.spanId).toBe(spanId);
    expect(byName.get('llm call')?.spanContext().traceId).toBe(traceId);
    expect(byName.get('llm call')?.parentSpanContext?.spanId).toBe(byName.get('subtask')?.spanContext().spanId);
  });

  it('injects nothing without an active span, and runs fn as is for a missing or malformed carrier', () => {
    installInMemoryTracing();
    expect(injectTraceparent()).toEqual({});
    expect(withExtractedContext(undefined, () => trace.getActiveSpan())).toBeUndefined();
    expect(withExtractedContext({ traceparent: 'garbage' }, () => trace.getActiveSpan())).toBeUndefined();
  });

  it('tells whether spans go anywhere: only while a tracer provider is registered', () => {
    trace.disable();
    expect(isTracing()).toBe(false);
    installInMemoryTracing();
    expect(isTracing()).toBe(true);
    trace.disable();
    expect(isTracing()).toBe(false);
  });

  it('gives BullMQ an OpenTelemetry implementation', () => {
    const telemetry = bullmqTelemetry({ version: '1.0.0' });
    expect(telemetry).toBeInstanceOf(BullMQOtel);
    expect(telemetry.meter).toBeDefined();
  });
});

describe('metrics', () => {
  afterAll(() => shutdownTelemetry());

  it('serves what getMetrics() recorded in Prometheus format, without a collector', async () => {
    const info = await initTelemetry({ serviceName: 'metrics-test', env: {} });
    expect(info).toEqual({ serviceName: 'metrics-test', serviceVersion: 'unknown', exporting: false });
    const metrics = getMetrics();
    metrics.jobs.add(2, { role: 'researcher', outcome: 'completed' });
    metrics.budgetUsed.record(0.6, { role: 'researcher', kind: 'steps' });

    const { contentType, body } = await renderPrometheusMetrics();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(body).toMatch(/^flotilla_jobs_total\{role="researcher",outcome="completed"[^}]*\} 2$/m);
    expect(body).toMatch(/^flotilla_budget_used_ratio_bucket\{role="researcher",kind="steps",[^}]*le="0\.75"\} 1$/m);
  });

  it('is idempotent to init and to shut down, and can start again afterwards', async () => {
    const first = initTelemetry({ serviceName: 'a', env: {} });
    const again = await initTelemetry({ serviceName: 'ignored', env: {} });
    expect(again).toEqual(await first);

    await Promise.all([shutdownTelemetry(), shutdownTelemetry()]);
    await shutdownTelemetry();
    expect((await renderPrometheusMetrics()).body).toMatch(/^# telemetry not initialised/);

    await initTelemetry({ serviceName: 'b', env: {} });
    getMetrics().llmTokens.add(5, { provider: 'offline', direction: 'prompt' });
    expect((await renderPrometheusMetrics()).body).toMatch(
      /^flotilla_llm_tokens_total\{provider="offline",direction="prompt"[^}]*\} 5$/m,
    );
  });
});
