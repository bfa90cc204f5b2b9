// Needs a real Redis: the trace has to survive the hops through BullMQ queues (plan job, flow
// children) to show that one trace spans API -> planning -> the workers' envelopes.
import { bullmqTelemetry } from '@flotilla/runtime';
import { installInMemoryTracing } from '@flotilla/runtime/testing';
import { waitFor } from '@flotilla/test-utils';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startRole } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  trace.disable();
});

describe('trace propagation', () => {
  it('carries the submit span trace through the plan job into every subtask envelope', async () => {
    const exporter = installInMemoryTracing();
    h = await startHarness({ llm: offlineLlm(), telemetry: bullmqTelemetry() });
    const traceparents: string[] = [];
    await startRole(h, {
      role: 'researcher',
      handler: async (_input, { envelope }) => {
        if (envelope.traceparent) traceparents.push(envelope.traceparent);
        return { stopReason: 'finish', output: 'ok' };
      },
    });
    const res = await h.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'one; two' } });
    const { taskId } = res.json() as { taskId: string };
    const view = await waitFor(
      async () => {
        const v = (await h!.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}` })).json() as {
          status: string;
          traceId?: string;
        };
        return v.status === 'completed' ? v : undefined;
      },
      { what: 'the task to complete' },
    );

    expect(view.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceparents).toHaveLength(2);
    for (const tp of traceparents) expect(tp.split('-')[1]).toBe(view.traceId);
    const spans = exporter.getFinishedSpans();
    expect(spans.some((s) => s.name === 'task submit' && s.spanContext().traceId === view.traceId)).toBe(true);
    // BullMQ's own spans (the plan job's producer/consumer) joined the same trace.
    expect(
      spans.filter((s) => s.name !== 'task submit' && s.spanContext().traceId === view.traceId).length,
    ).toBeGreaterThan(0);
  });
});
