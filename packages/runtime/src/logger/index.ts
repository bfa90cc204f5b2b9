export { createLogger, LOG_LEVELS, type Logger, type LoggerOptions, type LogLevel } from './logger.js';
export { clearSecretValues, REDACTED, redactText, registerSecretValue } from './redact.js';
export type { ToolResultLogEntry, ToolResultLogOptions } from './tool-result.js';
