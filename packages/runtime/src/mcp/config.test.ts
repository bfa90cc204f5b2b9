import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../config/index.js';
import { redactText } from '../logger/redact.js';
import { mcpServersField } from './config.js';

const schema = z.object({ MCP_SERVERS: mcpServersField().optional() });
const load = (value: string) => loadConfig(schema, { env: { MCP_SERVERS: value } });
const problem = (value: string) => {
  try {
    load(value);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a config error');
};

describe('MCP_SERVERS', () => {
  it('reads HTTP and stdio servers with their defaults, and a token from its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-config-'));
    writeFileSync(join(dir, 'token'), 'tok-secret-value-123\n');
    const { MCP_SERVERS } = load(
      JSON.stringify([
        { name: 'docs', url: 'http://docs-mcp:3001/mcp', tokenFile: join(dir, 'token') },
        { name: 'git', command: 'mcp-git', args: ['--repo', '/data'] },
      ]),
    );
    expect(MCP_SERVERS).toEqual([
      expect.objectContaining({ name: 'docs', token: 'tok-secret-value-123', timeoutMs: 30_000, retries: 1 }),
      expect.objectContaining({ name: 'git', command: 'mcp-git', args: ['--repo', '/data'], env: {} }),
    ]);
    // The token is a secret from the moment it is read.
    expect(redactText('Bearer tok-secret-value-123')).not.toContain('tok-secret-value-123');
  });

  it('names the variable and the field of each problem', () => {
    expect(problem('not json')).toMatch(/MCP_SERVERS: expected a JSON array of MCP servers/);
    expect(problem('[{"name":"Bad Name","url":"http://x/mcp"}]')).toMatch(/MCP_SERVERS: 0\.name: lowercase/);
    expect(problem('[{"name":"a"}]')).toMatch(/MCP_SERVERS: .*either "url".*or "command"/);
    expect(problem('[{"name":"a","url":"ftp://x"}]')).toMatch(/MCP_SERVERS: .*http/);
    expect(problem('[{"name":"a","url":"http://x/mcp"},{"name":"a","command":"y"}]')).toMatch(
      /MCP_SERVERS: 1\.name: "a" is declared twice/,
    );
    expect(problem('[{"name":"a","url":"http://x/mcp","tokenFile":"/nonexistent/token"}]')).toMatch(
      /MCP_SERVERS: 0\.tokenFile: cannot read \/nonexistent\/token \(ENOENT\)/,
    );
  });
});
