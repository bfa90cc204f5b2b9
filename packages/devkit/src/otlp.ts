import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** A span as received over OTLP/HTTP JSON, flattened with its service. */
export interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
  /** Start and end, epoch milliseconds with microsecond precision (the bench subtracts model time). */
  startMs: number;
  endMs: number;
}

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}

const attrValue = (v: Record<string, unknown>) => Object.values(v)[0];
/** OTLP JSON sends times as nanosecond integers, in strings (uint64 is past a double's precision). */
const epochMs = (nanos: string | number | undefined) => Number(BigInt(nanos ?? 0) / 1000n) / 1000;
const attrs = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, attrValue(a.value)]));

/**
 * A stand-in OpenTelemetry collector on loopback: accepts OTLP/HTTP JSON on /v1/traces and
 * /v1/metrics (what @opentelemetry/exporter-*-otlp-http send) and keeps what arrived, so `flotilla demo`
 * can show a task's one trace with no collector running, and tests can follow it across real processes.
 */
export async function startOtlpReceiver() {
  const bodies: { path: string; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString();
      bodies.push({ path: req.url ?? '', body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    spans(): ReceivedSpan[] {
      return bodies
        .filter((b) => b.path === '/v1/traces')
        .flatMap((b) => {
          const doc = JSON.parse(b.body) as {
            resourceSpans?: {
              resource?: { attributes?: OtlpAttribute[] };
              scopeSpans?: {
                spans?: {
                  name: string;
                  traceId: string;
                  spanId: string;
                  parentSpanId?: string;
                  attributes?: OtlpAttribute[];
                  startTimeUnixNano?: string | number;
                  endTimeUnixNano?: string | number;
                }[];
              }[];
            }[];
          };
          return (doc.resourceSpans ?? []).flatMap((rs) => {
            const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
            return (rs.scopeSpans ?? []).flatMap((ss) =>
              (ss.spans ?? []).map((s) => ({
                service,
                name: s.name,
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId || undefined,
                attributes: attrs(s.attributes),
                startMs: epochMs(s.startTimeUnixNano),
                endMs: epochMs(s.endTimeUnixNano),
              })),
            );
          });
        });
    },
    close: () =>
      new Promise<void>((resolve) => {
        // Exporters keep connections alive; don't let a finished test wait for them to time out.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
