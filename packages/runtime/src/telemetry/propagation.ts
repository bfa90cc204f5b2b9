import {
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ProxyTracerProvider,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/** The trace-context fields a SubtaskEnvelope carries. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

// A fixed W3C propagator rather than the global one: the envelope's fields are W3C by contract,
// whatever propagators an operator configured for HTTP.
const w3c = new W3CTraceContextPropagator();

/** The API's no-op provider: what a proxy with nothing registered delegates to. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * True when a tracer provider is registered, so spans go somewhere (the SDK with a collector,
 * or a test's in-memory exporter). Without one every span is a no-op, and code that only
 * wraps work in spans can skip the wrapping.
 */
export function isTracing(): boolean {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider && provider.getDelegate() !== NOOP_PROVIDER;
}

/** Tracer for flotilla's own spans. */
export function getTracer(name = 'flotilla', version?: string): Tracer {
  return trace.getTracer(name, version);
}

/**
 * The W3C `traceparent` (and `tracestate`) of the span active in `ctx`, for a
 * SubtaskEnvelope. Empty when there is no valid span, so spreading it is always safe:
 * `{ ...envelope, ...injectTraceparent() }`.
 */
export function injectTraceparent(ctx: Context = context.active()): TraceCarrier {
  const carrier: Record<string, string> = {};
  w3c.inject(ctx, carrier, defaultTextMapSetter);
  const out: TraceCarrier = {};
  if (carrier.traceparent) out.traceparent = carrier.traceparent;
  if (carrier.tracestate) out.tracestate = carrier.tracestate;
  return out;
}

/**
 * Runs `fn` with the remote span described by `carrier` as the active parent, so spans started
 * inside (and log lines written inside) join the caller's trace. A missing or malformed
 * carrier runs `fn` in the current context.
 */
export function withExtractedContext<T>(carrier: TraceCarrier | undefined, fn: () => T): T {
  if (!carrier?.traceparent) return fn();
  const ctx = w3c.extract(context.active(), carrier, defaultTextMapGetter);
  return context.with(ctx, fn);
}
