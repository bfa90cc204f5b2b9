export { type BullmqTelemetryOptions, bullmqTelemetry } from './bullmq.js';
export { type FlotillaMetrics, getMetrics } from './metrics.js';
export { getTracer, injectTraceparent, isTracing, type TraceCarrier, withExtractedContext } from './propagation.js';
export {
  initTelemetry,
  renderPrometheusMetrics,
  shutdownTelemetry,
  type TelemetryInfo,
  type TelemetryOptions,
} from './setup.js';
export { withSpan } from './span.js';
