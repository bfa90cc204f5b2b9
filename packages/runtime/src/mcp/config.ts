import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { registerSecretValue } from '../logger/redact.js';

// One MCP server a worker takes tools from. Defaults, and why:
// | field          | default | why                                                                    |
// |----------------|---------|------------------------------------------------------------------------|
// | timeoutMs      | 30000   | an MCP tool is often a remote service doing real work; 30 s per attempt |
// | retries        | 1       | one more attempt for transient failures only; a server's own error is final |
// | maxResultChars | 16000   | the model sees at most 4000 of it; the rest is for the audit sample     |
const SERVER_NAME = /^[a-z][a-z0-9-]{0,30}$/;

const common = {
  /** The namespace of its tools: the model sees `<name>.<tool>`; globs (allowlist, kill switch) match that. */
  name: z.string().regex(SERVER_NAME, 'lowercase letters, digits and dashes, starting with a letter (max 31)'),
  timeoutMs: z.number().int().positive().max(600_000).default(30_000),
  retries: z.number().int().min(0).max(5).default(1),
  maxResultChars: z.number().int().positive().max(1_000_000).default(16_000),
};

const httpServer = z.strictObject({
  ...common,
  /** Streamable HTTP endpoint, e.g. http://docs-mcp:3001/mcp. */
  url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
  /** A file holding the bearer token sent to the server (a Compose secret); read once at start. */
  tokenFile: z.string().min(1).optional(),
});

const stdioServer = z.strictObject({
  ...common,
  /** A program inside this worker's own image, started as a child process speaking MCP on stdio. */
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  /** Extra environment for the child; it gets only a minimal safe environment besides (the SDK's default). */
  env: z.record(z.string(), z.string()).default({}),
});

const serverSchema = z.union([httpServer, stdioServer], {
  error: 'each server needs either "url" (streamable HTTP) or "command" (stdio), with only the fields that go with it',
});
const serversSchema = z.array(serverSchema).superRefine((servers, ctx) => {
  const seen = new Set<string>();
  for (const [i, s] of servers.entries()) {
    if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${s.name}" is declared twice` });
    seen.add(s.name);
  }
});

export type McpServerConfig = z.output<typeof serverSchema>;
/** A server as the tool source uses it: the token already read from its file. */
export type McpServer =
  | (Extract<McpServerConfig, { url: string }> & { token?: string })
  | Extract<McpServerConfig, { command: string }>;

/**
 * MCP_SERVERS: a JSON array of servers (or MCP_SERVERS_FILE naming a JSON file). Token files are
 * read here, so a missing one is a config error at start (exit 78) naming the server, and each
 * token is registered with the log redactor before anything can print it.
 */
export const mcpServersField = () =>
  z.string().transform((text, ctx): McpServer[] => {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON array of MCP servers' });
      return z.NEVER;
    }
    const parsed = serversSchema.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
        ctx.addIssue({ code: 'custom', message: `${where}${issue.message}` });
      }
      return z.NEVER;
    }
    const servers: McpServer[] = [];
    for (const [i, server] of parsed.data.entries()) {
      if (!('url' in server) || !server.tokenFile) {
        servers.push(server);
        continue;
      }
      try {
        const token = readFileSync(server.tokenFile, 'utf8').trim();
        if (!token) throw Object.assign(new Error('empty'), { code: 'empty' });
        registerSecretValue(token);
        servers.push({ ...server, token });
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'unreadable';
        ctx.addIssue({ code: 'custom', message: `${i}.tokenFile: cannot read ${server.tokenFile} (${code})` });
        return z.NEVER;
      }
    }
    return servers;
  });
