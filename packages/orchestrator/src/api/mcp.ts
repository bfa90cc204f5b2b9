import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { createFlotillaMcpServer, type FlotillaMcpDeps } from '../mcp/server.js';

export interface McpRouteOptions extends Pick<FlotillaMcpDeps, 'tasks' | 'roles' | 'admission' | 'version'> {
  redis: Redis;
  ownerOf: (request: FastifyRequest) => string;
  /** Aborted when the app closes: calls waiting for a task return at once. */
  closing: AbortSignal;
}

/** Where MCP clients connect (an IDE's or desktop agent's server URL is `<base>/mcp`). */
export const MCP_PATH = '/mcp';

/**
 * POST /mcp: flotilla as an MCP server over streamable HTTP, stateless (a server and transport per
 * request, as the SDK's stateless example does), so any replica answers any request and nothing is
 * kept between them. The caller's API key (the plugin's auth hook) fixes the tenant. GET and
 * DELETE are refused with 405: without sessions there is no standalone stream to open or end.
 */
export function registerMcpRoute(app: FastifyInstance, options: McpRouteOptions): void {
  app.post(MCP_PATH, { config: { scope: 'tasks' } }, async (request, reply) => {
    const server = createFlotillaMcpServer({ ...options, owner: options.ownerOf(request), log: request.log });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    reply.hijack();
    const res = reply.raw;
    // Headers earlier hooks set on the reply (rate-limit counts) would be lost with it.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
    res.on('close', () => {
      void transport.close().catch(() => {});
      void server.close().catch(() => {});
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(request.raw, res, request.body);
    } catch (err) {
      request.log.error({ err }, 'MCP request failed');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
      } else if (!res.writableEnded) res.end();
    }
  });
}
