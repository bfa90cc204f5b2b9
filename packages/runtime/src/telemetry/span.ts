import { type Context, context, type Span, type SpanOptions, SpanStatusCode, trace } from '@opentelemetry/api';

/**
 * Runs `fn` in a new active span that always ends, and records a thrown error on it. Everything
 * flotilla traces (task submit, agent runs, tool calls, LLM calls) goes through here, so a span
 * can't be left open on an exception path.
 */
export function withSpan<T>(
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  return trace.getTracer('flotilla').startActiveSpan(name, options, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  });
}
