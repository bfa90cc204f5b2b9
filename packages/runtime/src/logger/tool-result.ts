import { redactValue } from './redact.js';

/** Share of tool results whose payload is logged (LOG_TOOL_RESULT_SAMPLE_RATE's default). */
export const DEFAULT_TOOL_RESULT_SAMPLE_RATE = 0.01;

/** Longest payload excerpt a log line carries. */
const DEFAULT_TOOL_RESULT_MAX_CHARS = 256;

/**
 * Whether this tool result's payload should be logged. Tool results are large and may carry
 * scraped personal data, so only a small sample is ever written, and never whole.
 * @param rate - 0 (never) .. 1 (always).
 * @param random - Source of randomness in [0, 1); injectable so tests can decide.
 */
export function shouldSampleToolResult(rate: number, random: () => number = Math.random): boolean {
  if (!(rate > 0)) return false;
  return rate >= 1 || random() < rate;
}

export interface ToolResultLogOptions {
  /** Sampling rate, 0..1. Default 0.01. */
  rate?: number;
  /** Excerpt length limit in characters. Default 256. */
  maxChars?: number;
  /** Randomness in [0, 1). Default Math.random. */
  random?: () => number;
}

/** What a log line carries about a tool result: always its size, an excerpt only when sampled. */
export interface ToolResultLogEntry {
  /** Length of the result serialized as JSON. */
  chars: number;
  /** Redacted, truncated excerpt; present only for sampled results. */
  sample?: string;
  /** True when `sample` was cut short. */
  truncated?: boolean;
}

/**
 * The log-safe summary of a tool result. The logger applies this to every `toolResult`
 * field, so `log.info({ tool, toolResult })` is always safe to write.
 */
export function toolResultForLog(result: unknown, options: ToolResultLogOptions = {}): ToolResultLogEntry {
  const { rate = DEFAULT_TOOL_RESULT_SAMPLE_RATE, maxChars = DEFAULT_TOOL_RESULT_MAX_CHARS, random } = options;
  const json = serialize(redactValue(result));
  const entry: ToolResultLogEntry = { chars: json.length };
  if (!shouldSampleToolResult(rate, random)) return entry;
  entry.sample = json.length > maxChars ? json.slice(0, maxChars) : json;
  if (json.length > maxChars) entry.truncated = true;
  return entry;
}

function serialize(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
