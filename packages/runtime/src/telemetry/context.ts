import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * Installs the AsyncLocalStorage context manager and the W3C propagators globally, replacing
 * whatever was there. Both are needed even when no traces are exported: without the context
 * manager `context.with` does not follow async code (a worker's log lines lose their trace id),
 * and without the propagator BullMQ's job metadata carries no traceparent from API to worker.
 */
export function installContextAndPropagation(): void {
  context.disable();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.disable();
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
}
