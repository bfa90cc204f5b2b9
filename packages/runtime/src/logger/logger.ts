import { hostname } from 'node:os';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';
import { isSecretKey, REDACTED, redactText, redactValue } from './redact.js';
import { DEFAULT_TOOL_RESULT_SAMPLE_RATE, toolResultForLog } from './tool-result.js';

export type { Logger } from 'pino';

/** Levels LOG_LEVEL accepts, quietest last. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = LevelWithSilent;

export interface LoggerOptions {
  /** Service name, written as `service` on every line. */
  service: string;
  /** Service version, written as `version` on every line when set. */
  version?: string;
  /** Minimum level written. Default 'info'. */
  level?: LogLevel;
  /** Where lines go. Default: synchronous writes to stdout, so the last lines before an exit are not lost. */
  destination?: DestinationStream;
  /** Extra fields on every line (beside pid, hostname, service). */
  base?: Record<string, unknown>;
  /** Share of `toolResult` fields whose payload is logged (truncated). Default 0.01. */
  toolResultSampleRate?: number;
}

/**
 * Paths pino censors before anything else runs: the usual places credentials sit in the
 * objects services log (request and response headers, error configs of HTTP clients).
 * Deeper or unexpected places are covered by the field-name walk in `formatters.log`.
 */
const REDACT_PATHS = [
  ...[
    'password',
    'passwd',
    'secret',
    'token',
    'accessToken',
    'refreshToken',
    'apiKey',
    'api_key',
    'authorization',
    'cookie',
  ].flatMap((k) => [k, `*.${k}`]),
  ...[
    'headers',
    'req.headers',
    'res.headers',
    'request.headers',
    'config.headers',
    'err.config.headers',
    '*.headers',
  ].flatMap((h) => [
    `${h}.authorization`,
    `${h}.cookie`,
    `${h}["set-cookie"]`,
    `${h}["x-api-key"]`,
    `${h}["proxy-authorization"]`,
  ]),
];

/**
 * Keys whose values a serializer turns into a summary (fastify's `req`/`res`, ours for `err`
 * and `toolResult`). The field walk leaves them to their serializer instead of copying, say,
 * a whole IncomingMessage first.
 */
const SERIALIZED_KEYS = new Set(['req', 'res', 'err', 'toolResult']);

/** trace_id/span_id of the active span, so a log line can be found from a trace and back. */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const ctx = span.spanContext();
  if (!isSpanContextValid(ctx)) return {};
  return { trace_id: ctx.traceId, span_id: ctx.spanId, trace_flags: ctx.traceFlags.toString(16).padStart(2, '0') };
}

function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (SERIALIZED_KEYS.has(key)) out[key] = value;
    else out[key] = isSecretKey(key) && value !== undefined && value !== null ? REDACTED : redactValue(value);
  }
  return out;
}

/**
 * A pino logger writing JSON lines to stdout, with redaction on by default in three layers:
 * pino's path-based `redact`; a walk over every logged object (child bindings included) that
 * censors secret-named fields at any depth, serializes Errors with their cause chain and
 * honours `toJSON`; and a final pass over each finished line (`hooks.streamWrite`) that
 * scrubs registered secret values and credential shapes wherever they ended up — message,
 * interpolation arguments, stacks, serializer output. The last layer is the guarantee; the
 * first two keep the output readable.
 */
export function createLogger(options: LoggerOptions): Logger {
  const sampleRate = options.toolResultSampleRate ?? DEFAULT_TOOL_RESULT_SAMPLE_RATE;
  return pino(
    {
      level: options.level ?? 'info',
      base: {
        pid: process.pid,
        hostname: hostname(),
        service: options.service,
        ...(options.version ? { version: options.version } : {}),
        ...options.base,
      },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: {
        err: redactValue,
        toolResult: (value: unknown) => toolResultForLog(value, { rate: sampleRate }),
      },
      formatters: {
        // Labels, not numbers: operators read these lines in `docker compose logs`.
        level: (label) => ({ level: label }),
        bindings: redactFields,
        log: redactFields,
      },
      mixin: traceFields,
      hooks: { streamWrite: redactText },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
