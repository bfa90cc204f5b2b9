export { createLogger, LOG_LEVELS, type Logger, type LoggerOptions, type LogLevel } from './logger.js';
export {
  clearSecretValues,
  isSecretKey,
  MIN_SECRET_LENGTH,
  REDACTED,
  redactText,
  redactValue,
  registerSecretValue,
} from './redact.js';
export {
  DEFAULT_TOOL_RESULT_MAX_CHARS,
  DEFAULT_TOOL_RESULT_SAMPLE_RATE,
  shouldSampleToolResult,
  type ToolResultLogEntry,
  type ToolResultLogOptions,
  toolResultForLog,
} from './tool-result.js';
