// A local fake vendor (127.0.0.1) plus in-memory OTel providers: checks spans, metrics and deadline-aware retries.
import { fakeReply, startFakeOpenAI } from '@flotilla/test-utils';
import { metrics, trace } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBudget } from '../budget/index.js';
import { createLlm } from './create.js';
import { LlmUnavailableError } from './errors.js';

const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
const meterProvider = new MeterProvider({ readers: [reader] });

beforeAll(() => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(meterProvider);
});
afterAll(async () => {
  await meterProvider.shutdown();
});

describe('llm client instrumentation', () => {
  it('wraps each call in an llm.chat span with gen_ai attributes and counts tokens by direction', async () => {
    const fake = await startFakeOpenAI();
    try {
      const llm = createLlm({
        LLM_PROVIDER: 'openai',
        LLM_BASE_URL: fake.url,
        OPENAI_API_KEY: 'sk-x',
        LLM_MODEL: 'gpt-test',
      });
      fake.script(fakeReply.text('hi', { prompt: 7, completion: 2 }));
      await llm.chat({ messages: [{ role: 'user', content: 'hello' }] });

      const span = spans.getFinishedSpans().find((s) => s.name === 'llm.chat');
      expect(span?.attributes).toMatchObject({
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-test',
        'gen_ai.usage.input_tokens': 7,
        'gen_ai.usage.output_tokens': 2,
      });

      const { resourceMetrics } = await reader.collect();
      const tokens = resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .find((m) => m.descriptor.name === 'flotilla_llm_tokens');
      const byDirection = Object.fromEntries(tokens?.dataPoints.map((p) => [p.attributes.direction, p.value]) ?? []);
      expect(byDirection).toEqual({ prompt: 7, completion: 2 });
    } finally {
      await fake.close();
    }
  });

  it('marks the span as an error when the call fails', async () => {
    spans.reset();
    const llm = createLlm({ LLM_PROVIDER: 'offline' });
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await expect(llm.chat({ messages: [{ role: 'user', content: 'x' }] }, { signal: ac.signal })).rejects.toThrow();
    const span = spans.getFinishedSpans().find((s) => s.name === 'llm.chat');
    expect(span?.status.code).toBe(2); // SpanStatusCode.ERROR
  });

  it('does not start a retry the budget deadline would cut anyway', async () => {
    const fake = await startFakeOpenAI();
    try {
      const waits: number[] = [];
      const llm = createLlm(
        { LLM_PROVIDER: 'openai', LLM_BASE_URL: fake.url, OPENAI_API_KEY: 'sk-x' },
        { retry: { onRetry: (i) => waits.push(i.delayMs) } },
      );
      fake.script(fakeReply.rateLimit('30'), fakeReply.text('too late'));
      const budget = createBudget({ maxSteps: 5, maxToolCalls: 5, maxSeconds: 5, maxTokens: 1000 });
      const err = await llm.chat({ messages: [{ role: 'user', content: 'x' }] }, { budget }).catch((e: unknown) => e);
      budget.dispose();
      expect(err).toBeInstanceOf(LlmUnavailableError);
      expect((err as Error).message).toMatch(/after the deadline/);
      expect(waits).toEqual([]);
      expect(fake.requests).toHaveLength(1);
    } finally {
      await fake.close();
    }
  });
});
