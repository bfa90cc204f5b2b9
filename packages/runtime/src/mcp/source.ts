import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { describeError } from '../tools/errors.js';
import { type AnyTool, defineTool, type ToolContext, type ToolLog, type ToolSource } from '../tools/index.js';
import type { McpServer } from './config.js';
import { isLostSession, isTransientMcpError, McpToolError, McpUnavailableError } from './errors.js';
import { errorText, toToolOutput } from './result.js';

/**
 * Where a write's idempotency key travels: the request's `_meta`, under a prefixed key as the MCP
 * spec asks of implementations. A server that dedupes writes reads it; others ignore it.
 */
export const IDEMPOTENCY_META_KEY = 'io.flotilla/idempotency-key';

// A server's description is text from outside shown to the model with the tool list: cap it.
const MAX_DESCRIPTION = 1000;
const MAX_ERROR_TEXT = 1000;

export interface McpToolSourceOptions {
  servers: readonly McpServer[];
  log: ToolLog;
  /** Sent to servers in `initialize`. Default flotilla. */
  clientName?: string;
  clientVersion?: string;
  /** How long connecting and listing a server's tools may take, ms. Default 10000. */
  connectTimeoutMs?: number;
  /** Between attempts to reach a server that is down, ms. Default 5000. */
  reconnectMs?: number;
}

export interface McpServerStatus {
  server: string;
  connected: boolean;
  tools: number;
}

/** Every declared server's tools, as gateway tools named `<server>.<tool>`. */
export interface McpToolSource extends ToolSource {
  /**
   * Connects every server at once and lists its tools. A server that cannot be reached is logged
   * and tried again every `reconnectMs` in the background: its tools appear once it answers.
   */
  start(): Promise<void>;
  status(): McpServerStatus[];
  /** Stops reconnecting and closes every connection (stdio servers' processes end). Idempotent. */
  close(): Promise<void>;
}

export function createMcpToolSource(options: McpToolSourceOptions): McpToolSource {
  const connections = options.servers.map((server) => new Connection(server, options));
  let closing: Promise<void> | undefined;
  return {
    tools: () => connections.flatMap((c) => c.tools),
    async start() {
      await Promise.all(connections.map((c) => c.connectOrRetryLater()));
    },
    status: () => connections.map((c) => ({ server: c.server.name, connected: c.connected, tools: c.tools.length })),
    close() {
      closing ??= Promise.allSettled(connections.map((c) => c.close())).then(() => undefined);
      return closing;
    },
  };
}

class Connection {
  tools: AnyTool[] = [];
  #client: Client | undefined;
  #connecting: Promise<Client> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #log: ToolLog;

  constructor(
    readonly server: McpServer,
    private readonly options: McpToolSourceOptions,
  ) {
    this.#log = options.log.child({ mcpServer: server.name });
  }

  get connected(): boolean {
    return this.#client !== undefined;
  }

  async connectOrRetryLater(): Promise<void> {
    try {
      await this.client();
    } catch (err) {
      this.#log.warn({ err: describeError(err) }, 'MCP server unreachable; its tools stay absent until it answers');
      this.#retryLater();
    }
  }

  /** The connected client, connecting first if need be (one attempt at a time). */
  client(): Promise<Client> {
    if (this.#client) return Promise.resolve(this.#client);
    if (this.#closed) return Promise.reject(new McpUnavailableError(this.server.name, new Error('closed')));
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<Client> {
    const { server } = this;
    const timeout = this.options.connectTimeoutMs ?? 10_000;
    const client = new Client(
      { name: this.options.clientName ?? 'flotilla', version: this.options.clientVersion ?? '0.1.0' },
      {
        capabilities: {},
        listChanged: {
          tools: {
            onChanged: (err, tools) => {
              if (err) this.#log.warn({ err: describeError(err) }, 'could not refresh the MCP tool list');
              else if (tools && this.#client === client) this.#setTools(tools);
            },
          },
        },
      },
    );
    const transport =
      'url' in server
        ? new StreamableHTTPClientTransport(new URL(server.url), {
            requestInit: server.token ? { headers: { authorization: `Bearer ${server.token}` } } : undefined,
          })
        : new StdioClientTransport({
            command: server.command,
            args: server.args,
            // Only what the SDK deems safe (PATH, HOME, ...) plus what the operator named: never the
            // worker's own secrets.
            env: { ...getDefaultEnvironment(), ...server.env },
            stderr: 'inherit',
          });
    let listed: McpTool[];
    try {
      await client.connect(transport, { timeout });
      listed = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : undefined, { timeout });
        listed.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor);
    } catch (err) {
      await client.close().catch(() => {});
      throw new McpUnavailableError(server.name, err);
    }
    if (this.#closed) {
      await client.close().catch(() => {});
      throw new McpUnavailableError(server.name, new Error('closed'));
    }
    client.onclose = () => this.#drop(client);
    this.#client = client;
    this.#setTools(listed);
    this.#log.info(
      { tools: this.tools.map((t) => `${t.name} (${t.sideEffects})`) },
      'MCP server connected; its tools are gateway tools',
    );
    return client;
  }

  #drop(client: Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    void client.close().catch(() => {});
    if (!this.#closed) {
      this.#log.warn({}, 'MCP connection lost; reconnecting');
      this.#retryLater();
    }
  }

  #retryLater(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.connectOrRetryLater();
    }, this.options.reconnectMs ?? 5000);
    this.#timer.unref();
  }

  #setTools(listed: McpTool[]): void {
    const { server } = this;
    const tools: AnyTool[] = [];
    for (const t of listed) {
      try {
        tools.push(
          defineTool({
            name: `${server.name}.${t.name}`,
            description: (t.description ?? t.title ?? t.name).slice(0, MAX_DESCRIPTION),
            // The server's own schema both validates the arguments here and is what the model sees.
            input: z.fromJSONSchema(t.inputSchema as z.core.JSONSchema.JSONSchema),
            parameters: t.inputSchema as Record<string, unknown>,
            // Only a tool the server says is read-only is a read: anything else gets an idempotency
            // key and is stopped by the "no writes" kill switch.
            sideEffects: t.annotations?.readOnlyHint === true ? 'read' : 'write',
            timeoutMs: server.timeoutMs,
            retries: server.retries,
            retryable: isTransientMcpError,
            // A server's tools fail together (it is down, or overloaded): one breaker for all of them.
            breakerKey: `mcp:${server.name}`,
            run: (args, ctx) => this.#call(t.name, args, ctx),
          }),
        );
      } catch (err) {
        this.#log.warn({ tool: t.name, err: describeError(err) }, 'MCP tool left out: unusable name or input schema');
      }
    }
    this.tools = tools;
  }

  async #call(tool: string, args: unknown, ctx: ToolContext): Promise<unknown> {
    const client = await this.client();
    try {
      const result = (await client.callTool(
        {
          name: tool,
          arguments: args as Record<string, unknown>,
          ...(ctx.idempotencyKey && { _meta: { [IDEMPOTENCY_META_KEY]: ctx.idempotencyKey } }),
        },
        undefined,
        // The gateway's per-attempt timeout aborts the signal (the SDK then sends notifications/cancelled);
        // the SDK's own timeout is only a backstop behind it.
        { signal: ctx.signal, timeout: this.server.timeoutMs + 5000 },
      )) as CallToolResult;
      if (result.isError) throw new McpToolError(`${this.server.name}.${tool}`, errorText(result, MAX_ERROR_TEXT));
      return toToolOutput(result, this.server.maxResultChars);
    } catch (err) {
      // The server forgot our session (it restarted): connect afresh on the next attempt.
      if (isLostSession(err)) this.#drop(client);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const client = this.#client ?? (await this.#connecting?.catch(() => undefined));
    this.#client = undefined;
    await client?.close();
  }
}
