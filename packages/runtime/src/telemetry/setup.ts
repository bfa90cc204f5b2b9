import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { defaultResource, type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { installContextAndPropagation } from './context.js';

export interface TelemetryOptions {
  /** service.name. Default OTEL_SERVICE_NAME, else SERVICE_NAME, else 'flotilla'. */
  serviceName?: string;
  /** service.version. Default SERVICE_VERSION, else 'unknown'. */
  serviceVersion?: string;
  /**
   * OTLP/HTTP collector base URL (traces go to `<endpoint>/v1/traces`, metrics to
   * `<endpoint>/v1/metrics`). Default OTEL_EXPORTER_OTLP_ENDPOINT. Unset: nothing is pushed,
   * tracing is a no-op, and metrics are only served on /metrics.
   */
  endpoint?: string;
  /** How often metrics are pushed to the collector. Default OTEL_METRIC_EXPORT_INTERVAL, else 15000 ms. */
  metricExportIntervalMs?: number;
  /** Environment the defaults are read from. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** What `initTelemetry` set up. */
export interface TelemetryInfo {
  serviceName: string;
  serviceVersion: string;
  /** True when traces and metrics are pushed to a collector. */
  exporting: boolean;
}

type Active = { info: TelemetryInfo; prometheus: PrometheusExporter; shutdown: () => Promise<void> };

let active: Promise<Active> | undefined;
let stopping: Promise<void> | undefined;

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const serializer = new PrometheusSerializer();

/**
 * Registers global telemetry before app code runs (the `@flotilla/runtime/register` hook
 * calls it): always a MeterProvider with a Prometheus reader, so /metrics works without a
 * collector, plus the AsyncLocalStorage context manager and W3C propagation; and, when an
 * OTLP endpoint is configured, the OpenTelemetry NodeSDK pushing traces and metrics over
 * OTLP/HTTP. No auto-instrumentation: flotilla's spans come from its own code and BullMQ's.
 * Idempotent: later calls return the first call's result, whatever their options.
 */
export function initTelemetry(options: TelemetryOptions = {}): Promise<TelemetryInfo> {
  active ??= start(options);
  return active.then((a) => a.info);
}

async function start(options: TelemetryOptions): Promise<Active> {
  const env = options.env ?? process.env;
  const info: TelemetryInfo = {
    serviceName: options.serviceName ?? (env.OTEL_SERVICE_NAME || env.SERVICE_NAME || 'flotilla'),
    serviceVersion: options.serviceVersion ?? (env.SERVICE_VERSION || 'unknown'),
    exporting: false,
  };
  const endpoint = options.endpoint ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined);
  const resource = defaultResource().merge(
    resourceFromAttributes({ [ATTR_SERVICE_NAME]: info.serviceName, [ATTR_SERVICE_VERSION]: info.serviceVersion }),
  );
  // The reader never opens its own port: the health server serves /metrics.
  const prometheus = new PrometheusExporter({ preventServerStart: true });

  if (!endpoint) return startLocal(info, resource, prometheus);

  const intervalMs = options.metricExportIntervalMs ?? (Number(env.OTEL_METRIC_EXPORT_INTERVAL) || 15_000);
  try {
    const sdk = await startSdk(endpoint.replace(/\/+$/, ''), resource, prometheus, intervalMs);
    info.exporting = true;
    return { info, prometheus, shutdown: () => sdk.shutdown() };
  } catch (err) {
    // Telemetry must never keep a service from starting: fall back to /metrics only. No logger
    // exists yet (this runs before app code), hence stderr.
    process.stderr.write(`telemetry: cannot start the OpenTelemetry SDK, exporting disabled (${String(err)})\n`);
    return startLocal(info, resource, prometheus);
  }
}

function startLocal(info: TelemetryInfo, resource: Resource, prometheus: PrometheusExporter): Active {
  installContextAndPropagation();
  const provider = new MeterProvider({ resource, readers: [prometheus] });
  metrics.setGlobalMeterProvider(provider);
  return { info, prometheus, shutdown: () => provider.shutdown() };
}

// Loaded only when exporting: the SDK and its exporters are most of telemetry's start-up cost.
async function startSdk(
  endpoint: string,
  resource: Resource,
  prometheus: PrometheusExporter,
  intervalMs: number,
): Promise<NodeSDK> {
  const [{ NodeSDK }, { OTLPTraceExporter }, { OTLPMetricExporter }, { PeriodicExportingMetricReader }, ctx, core] =
    await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/exporter-metrics-otlp-http'),
      import('@opentelemetry/sdk-metrics'),
      import('@opentelemetry/context-async-hooks'),
      import('@opentelemetry/core'),
    ]);
  // Globals from an earlier init (tests) would make the SDK's registration fail.
  context.disable();
  propagation.disable();
  const sdk = new NodeSDK({
    resource,
    traceExporter: new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }),
    metricReaders: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${endpoint}/v1/metrics` }),
        exportIntervalMillis: intervalMs,
        exportTimeoutMillis: Math.min(intervalMs, 10_000),
      }),
      prometheus,
    ],
    contextManager: new ctx.AsyncLocalStorageContextManager(),
    textMapPropagator: new core.CompositePropagator({
      propagators: [new core.W3CTraceContextPropagator(), new core.W3CBaggagePropagator()],
    }),
    instrumentations: [],
    // Logs go to stdout as JSON; without this the SDK would also start an OTLP log exporter.
    logRecordProcessors: [],
  });
  sdk.start();
  return sdk;
}

/**
 * Flushes and stops telemetry, waiting at most `timeoutMs` (a collector that is down must not
 * hold a stopping container), then unregisters the globals so `initTelemetry` can run again.
 * Idempotent; never throws.
 */
export function shutdownTelemetry({ timeoutMs = 5_000 }: { timeoutMs?: number } = {}): Promise<void> {
  if (!active) return stopping ?? Promise.resolve();
  const current = active;
  stopping ??= (async () => {
    try {
      const a = await current;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([a.shutdown().catch(() => {}), deadline]);
      clearTimeout(timer);
    } catch {
      // Telemetry that failed to start has nothing to flush.
    } finally {
      metrics.disable();
      trace.disable();
      context.disable();
      propagation.disable();
      active = undefined;
      stopping = undefined;
    }
  })();
  return stopping;
}

/**
 * The current metrics in Prometheus text format, for GET /metrics. Before `initTelemetry`
 * (a process started without the register hook) the body says so instead of being empty.
 */
export async function renderPrometheusMetrics(): Promise<{ contentType: string; body: string }> {
  if (!active) {
    return {
      contentType: PROMETHEUS_CONTENT_TYPE,
      body: '# telemetry not initialised: start with --import @flotilla/runtime/register\n',
    };
  }
  const { prometheus } = await active;
  const { resourceMetrics, errors } = await prometheus.collect();
  const notes = errors.map((e) => `# collection error: ${String(e).replace(/\n/g, ' ')}\n`).join('');
  return { contentType: PROMETHEUS_CONTENT_TYPE, body: notes + serializer.serialize(resourceMetrics) };
}
