import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { isLostSession, isTransientMcpError, McpToolError } from './errors.js';
import { errorText, toToolOutput } from './result.js';

describe('toToolOutput', () => {
  it('joins text, names binary content by size instead of inlining it, and keeps structured content', () => {
    const out = toToolOutput(
      {
        content: [
          { type: 'text', text: 'first' },
          { type: 'image', mimeType: 'image/png', data: 'AAAA' },
          { type: 'resource_link', uri: 'file:///a.txt', name: 'a' },
        ],
        structuredContent: { sum: 5 },
      },
      1000,
    );
    expect(out).toEqual({
      text: 'first\n[image image/png, 4 base64 chars]\n[resource link file:///a.txt (a)]',
      structuredContent: { sum: 5 },
    });
  });

  it('cuts text and drops structured content beyond the cap, and says so', () => {
    const out = toToolOutput(
      { content: [{ type: 'text', text: 'x'.repeat(50) }], structuredContent: { big: 'y'.repeat(50) } },
      10,
    );
    expect(out).toEqual({ text: `${'x'.repeat(10)}…`, truncated: true });
    expect(errorText({ content: [{ type: 'text', text: 'e'.repeat(20) }], isError: true }, 5)).toBe('eeeee…');
  });
});

describe('isTransientMcpError', () => {
  it('retries what a later attempt may fix, and nothing the server decided', () => {
    expect(isTransientMcpError(new McpError(ErrorCode.RequestTimeout, 'slow'))).toBe(true);
    expect(isTransientMcpError(new McpError(ErrorCode.ConnectionClosed, 'gone'))).toBe(true);
    expect(isTransientMcpError(new StreamableHTTPError(503, 'busy'))).toBe(true);
    expect(isTransientMcpError(new StreamableHTTPError(429, 'slow down'))).toBe(true);
    expect(
      isTransientMcpError(
        new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }),
      ),
    ).toBe(true);
    expect(isTransientMcpError(new McpError(ErrorCode.InvalidParams, 'bad'))).toBe(false);
    expect(isTransientMcpError(new StreamableHTTPError(401, 'no'))).toBe(false);
    expect(isTransientMcpError(new McpToolError('a.b', 'refused'))).toBe(false);
  });

  it('reconnects when the server forgot the session (404, or 400 naming the session)', () => {
    expect(isLostSession(new StreamableHTTPError(404, 'Session not found'))).toBe(true);
    expect(isLostSession(new StreamableHTTPError(400, 'Bad Request: No valid session ID provided'))).toBe(true);
    expect(isLostSession(new StreamableHTTPError(400, 'Bad Request: invalid JSON'))).toBe(false);
    expect(isTransientMcpError(new StreamableHTTPError(400, 'No valid session ID provided'))).toBe(true);
  });
});
