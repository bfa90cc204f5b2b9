import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { installContextAndPropagation } from './context.js';

/**
 * For tests that assert spans: registers a global tracer provider that keeps every finished
 * span in memory (plus the AsyncLocalStorage context manager and W3C propagation) and returns
 * its exporter. Calling it again replaces the previous provider.
 */
export function installInMemoryTracing(): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.disable();
  trace.setGlobalTracerProvider(provider);
  installContextAndPropagation();
  return exporter;
}
