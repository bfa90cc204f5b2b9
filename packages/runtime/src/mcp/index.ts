export { type McpServer, type McpServerConfig, mcpServersField } from './config.js';
export { isTransientMcpError, McpToolError, McpUnavailableError } from './errors.js';
export { type McpToolOutput, toToolOutput } from './result.js';
export {
  createMcpToolSource,
  IDEMPOTENCY_META_KEY,
  type McpServerStatus,
  type McpToolSource,
  type McpToolSourceOptions,
} from './source.js';
