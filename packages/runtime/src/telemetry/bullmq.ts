import { BullMQOtel } from 'bullmq-otel';

export interface BullmqTelemetryOptions {
  /** Tracer and meter name. Default 'flotilla.bullmq'. */
  name?: string;
  /** Version reported with the tracer and meter. */
  version?: string;
  /** Record BullMQ's job counters and durations too. Default true. */
  metrics?: boolean;
}

/**
 * The `telemetry` option for every BullMQ Queue, Worker and FlowProducer: BullMQ then writes
 * the producer's trace context into each job and continues it in the worker, so one trace
 * runs API -> queue -> worker. Create it after telemetry is initialised (the register hook
 * does that before app code): OpenTelemetry's metrics API has no proxy for a provider
 * registered later.
 */
export function bullmqTelemetry(options: BullmqTelemetryOptions = {}): BullMQOtel {
  const name = options.name ?? 'flotilla.bullmq';
  return new BullMQOtel({
    tracerName: name,
    meterName: name,
    version: options.version,
    enableMetrics: options.metrics ?? true,
  });
}
