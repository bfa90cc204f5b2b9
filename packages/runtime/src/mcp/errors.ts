import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { FlotillaError, isTransientError } from '../errors.js';

/** The server ran the tool and reported an error (`isError: true`). Its own verdict: not retried. */
export class McpToolError extends FlotillaError {
  readonly retryable = false;

  constructor(tool: string, message: string) {
    super('FLOTILLA_MCP_TOOL_ERROR', `${tool} reported an error: ${message}`);
  }
}

/** The server is not connected (yet, or any more). Transient: the next attempt connects again. */
export class McpUnavailableError extends FlotillaError {
  readonly retryable = true;

  constructor(server: string, cause: unknown) {
    super('FLOTILLA_MCP_UNAVAILABLE', `MCP server ${server} is unreachable`, { cause });
  }
}

/**
 * Which MCP failures are worth another attempt (and count toward the server's breaker): the SDK's
 * request timeout and a closed connection, HTTP 408/429/5xx and an unknown session (the server
 * restarted), and network errors. A JSON-RPC error the server chose (invalid params, method not
 * found) is final.
 */
export function isTransientMcpError(err: unknown): boolean {
  if (err instanceof McpError) return err.code === ErrorCode.RequestTimeout || err.code === ErrorCode.ConnectionClosed;
  if (err instanceof StreamableHTTPError) {
    const status = err.code;
    return status === undefined || status === 408 || status === 429 || status >= 500 || isLostSession(err);
  }
  return isTransientError(err);
}

/**
 * The server no longer knows our session (it restarted). The spec answers 404; some servers (the
 * reference server-everything among them) answer 400 "No valid session ID". Either way the cure
 * is a new connection, not giving up.
 */
export function isLostSession(err: unknown): boolean {
  return err instanceof StreamableHTTPError && (err.code === 404 || (err.code === 400 && /session/i.test(err.message)));
}
