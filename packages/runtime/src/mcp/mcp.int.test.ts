// Against the reference MCP server (@modelcontextprotocol/server-everything, written by the MCP
// project, not us) as a real process on loopback, and a real Redis for the kill switch and write
// idempotency: each gateway rule must hold for tools that come from a server we did not write.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  type RunningProcess,
  startProcess,
  stopAll,
  testServices,
  uniquePrefix,
  waitFor,
} from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Budget, createBudget } from '../budget/index.js';
import {
  createKillSwitch,
  createToolGateway,
  type KillSwitch,
  type ToolGatewayOptions,
  type ToolLog,
} from '../tools/index.js';
import { createMcpToolSource, IDEMPOTENCY_META_KEY, type McpServer, type McpToolSource } from './index.js';

const { redisUrl } = testServices();
const everythingMain = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

interface LogRecord {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}
function recordingLog(records: LogRecord[], bindings: Record<string, unknown> = {}): ToolLog {
  const at = (level: string) => (obj: object, msg?: string) => {
    records.push({ level, obj: { ...bindings, ...obj }, msg });
  };
  return {
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => recordingLog(records, { ...bindings, ...more }),
  };
}

/** server-everything over streamable HTTP on a free port; resolves once it answers. */
async function startEverything(port?: number): Promise<{ proc: RunningProcess; url: string }> {
  port ??= await freePort();
  const proc = startProcess(process.execPath, [everythingMain, 'streamableHttp'], { env: { PORT: String(port) } });
  const url = `http://127.0.0.1:${port}/mcp`;
  await waitFor(async () => (await fetch(url, { method: 'GET' }).catch(() => undefined)) !== undefined, {
    what: 'server-everything to listen',
  });
  return { proc, url };
}

let everything: { proc: RunningProcess; url: string };
let prefix: string;
let redis: Redis;
let killSwitch: KillSwitch;
let records: LogRecord[];
const budgets: Budget[] = [];
const sources: McpToolSource[] = [];
const procs: RunningProcess[] = [];

const budget = () => {
  const b = createBudget({ maxSteps: 10, maxToolCalls: 100, maxSeconds: 60, maxTokens: 1000 });
  budgets.push(b);
  return b;
};
let callIndex = 0;
const run = () => ({ budget: budget(), taskId: 'task-1', subtaskId: 'sub-1', callIndex: callIndex++ });

async function source(overrides: Partial<Extract<McpServer, { url: string }>> = {}) {
  const src = createMcpToolSource({
    servers: [
      { name: 'everything', url: everything.url, timeoutMs: 5000, retries: 1, maxResultChars: 16_000, ...overrides },
    ],
    log: recordingLog(records),
    reconnectMs: 200,
  });
  sources.push(src);
  await src.start();
  return src;
}

function gateway(src: McpToolSource, overrides: Partial<ToolGatewayOptions> = {}) {
  return createToolGateway({
    tools: [],
    sources: [src],
    redis,
    prefix,
    allowlist: ['*'],
    killSwitch,
    log: recordingLog(records),
    backoff: { initialDelayMs: 5, maxDelayMs: 20 },
    ...overrides,
  });
}

beforeAll(async () => {
  everything = await startEverything();
  procs.push(everything.proc);
});
afterAll(() => stopAll(procs));

beforeEach(async () => {
  prefix = uniquePrefix('mcp');
  redis = new Redis(redisUrl);
  killSwitch = await createKillSwitch({ redis, subscriber: redis.duplicate(), prefix });
  records = [];
  callIndex = 0;
});

afterEach(async () => {
  for (const b of budgets.splice(0)) b.dispose();
  await Promise.all(sources.splice(0).map((s) => s.close()));
  await killSwitch.close();
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

describe('an MCP server as a tool source', () => {
  it('lists its tools under <server>.<tool> with their JSON Schemas, reads and writes by annotation', async () => {
    const src = await source();
    const byName = new Map(src.tools().map((t) => [t.name, t]));
    expect(byName.get('everything.echo')?.sideEffects).toBe('read');
    expect(byName.get('everything.get-sum')?.parameters).toMatchObject({
      type: 'object',
      properties: { a: { type: 'number' }, b: { type: 'number' } },
    });
    // Annotated readOnlyHint: false, so it counts as a write.
    expect(byName.get('everything.toggle-simulated-logging')?.sideEffects).toBe('write');
    expect(src.status()).toEqual([{ server: 'everything', connected: true, tools: src.tools().length }]);
  });

  it('calls its tools through the gateway, with an audit record per call', async () => {
    const gw = gateway(await source());
    const echo = await gw.call('everything.echo', { message: 'hello mcp' }, run());
    expect(echo).toMatchObject({ ok: true, attempts: 1 });
    expect(echo.ok && (echo.output as { text: string }).text).toContain('hello mcp');
    const sum = await gw.call('everything.get-sum', { a: 2, b: 3 }, run());
    expect(sum.ok && (sum.output as { text: string }).text).toContain('is 5');
    const audits = records.filter((r) => r.msg === 'tool call').map((r) => r.obj.audit as Record<string, unknown>);
    expect(audits.map((a) => [a.tool, a.outcome])).toEqual([
      ['everything.echo', 'ok'],
      ['everything.get-sum', 'ok'],
    ]);
  });

  it('passes a write its idempotency key and replays its result instead of calling twice', async () => {
    const gw = gateway(await source());
    const writes = new Map<string, number>();
    const first = await gw.call('everything.toggle-simulated-logging', {}, { ...run(), idempotencyKey: 'k-1', writes });
    expect(first).toMatchObject({ ok: true, attempts: 1, cached: false });
    const again = await gw.call('everything.toggle-simulated-logging', {}, { ...run(), idempotencyKey: 'k-1', writes });
    expect(again).toMatchObject({ ok: true, attempts: 0, cached: true });
  });

  it('refuses a tool the allowlist does not match, and does not offer it', async () => {
    const gw = gateway(await source(), { allowlist: ['everything.echo'] });
    expect(gw.allowedTools().map((t) => t.name)).toEqual(['everything.echo']);
    expect(await gw.call('everything.get-sum', { a: 1, b: 2 }, run())).toMatchObject({
      ok: false,
      code: 'not_allowlisted',
      attempts: 0,
    });
    expect(await gw.call('everything.echo', { message: 'x' }, run())).toMatchObject({ ok: true });
  });

  it('obeys the kill switch per server, per tool and for writes', async () => {
    const gw = gateway(await source());
    await killSwitch.set({ tools: ['everything.get-sum'] });
    expect(await gw.call('everything.get-sum', { a: 1, b: 2 }, run())).toMatchObject({
      ok: false,
      code: 'kill_switch',
    });
    expect(await gw.call('everything.echo', { message: 'x' }, run())).toMatchObject({ ok: true });

    await killSwitch.set({ tools: ['everything.*'] });
    expect(await gw.call('everything.echo', { message: 'x' }, run())).toMatchObject({ ok: false, code: 'kill_switch' });

    await killSwitch.set({ tools: [], noWrites: true });
    expect(await gw.call('everything.toggle-simulated-logging', {}, run())).toMatchObject({
      ok: false,
      code: 'kill_switch',
    });
    expect(await gw.call('everything.echo', { message: 'x' }, run())).toMatchObject({ ok: true });
  });

  it('asks for approval where TOOLS_REQUIRE_APPROVAL names a server tool, and only there', async () => {
    const gw = gateway(await source(), { requireApproval: ['everything.get-*'], allowlist: ['everything.*'] });
    expect(gw.requiresApproval('everything.get-sum')).toBe(true);
    expect(gw.requiresApproval('everything.echo')).toBe(false);
  });

  it("rejects arguments that fail the server's own schema before calling it", async () => {
    const gw = gateway(await source());
    const bad = await gw.call('everything.get-sum', { a: 'two', b: 3 }, run());
    expect(bad).toMatchObject({ ok: false, code: 'invalid_input', stopReason: 'invalid_input', attempts: 0 });
    expect(!bad.ok && bad.message).toMatch(/a/);
    expect(await gw.call('everything.echo', {}, run())).toMatchObject({ ok: false, code: 'invalid_input' });
  });

  it('times out a slow call, and opens the server breaker for all its tools after repeated failures', async () => {
    const gw = gateway(await source({ timeoutMs: 300, retries: 0 }), {
      breaker: { threshold: 2, halfOpenAfterMs: 60_000 },
    });
    // Control: the server answers before anything failed.
    expect(await gw.call('everything.echo', { message: 'before' }, run())).toMatchObject({ ok: true });
    for (let i = 0; i < 2; i++) {
      expect(
        await gw.call('everything.trigger-long-running-operation', { duration: 5, steps: 5 }, run()),
      ).toMatchObject({ ok: false, code: 'timeout', attempts: 1 });
    }
    expect(gw.circuit('everything.echo')).toBe('open');
    // Another tool of the same server is not tried while its breaker is open.
    expect(await gw.call('everything.echo', { message: 'after' }, run())).toMatchObject({
      ok: false,
      code: 'circuit_open',
      attempts: 0,
    });
  });

  it('retries a server that went away, then fails the call transiently; its tools come back with it', async () => {
    const own = await startEverything();
    procs.push(own.proc);
    const src = await source({ url: own.url, retries: 1 });
    const gw = gateway(src);
    expect(await gw.call('everything.echo', { message: 'up' }, run())).toMatchObject({ ok: true });
    own.proc.signal('SIGKILL');
    await own.proc.exited;
    const down = await gw.call('everything.echo', { message: 'down' }, run());
    expect(down).toMatchObject({ ok: false, code: 'tool_failed', stopReason: 'tool_error', attempts: 2 });
    expect(records.some((r) => r.msg === 'tool attempt failed; retrying')).toBe(true);

    // Back on the same address, with no memory of our session: the source connects afresh.
    const again = await startEverything(Number(new URL(own.url).port));
    procs.push(again.proc);
    const back = await waitFor(
      async () => {
        const outcome = await gw.call('everything.echo', { message: 'back' }, run());
        return outcome.ok && outcome;
      },
      { what: 'the restarted server to answer through the gateway', intervalMs: 300 },
    );
    expect((back.output as { text: string }).text).toContain('back');
  });
});

describe('a stdio MCP server in the worker image', () => {
  // Spawned processes run built code: `pnpm test` builds dist/ first.
  const fixture = fileURLToPath(new URL('../../dist/mcp/fixtures/tool-server.js', import.meta.url));
  const stdio = async () => {
    const src = createMcpToolSource({
      servers: [
        {
          name: 'fixture',
          command: process.execPath,
          args: [fixture],
          env: {},
          timeoutMs: 5000,
          retries: 1,
          maxResultChars: 16_000,
        },
      ],
      log: recordingLog(records),
    });
    sources.push(src);
    await src.start();
    return src;
  };

  it("sends a write's idempotency key in the request's _meta", async () => {
    const gw = gateway(await stdio());
    const out = await gw.call('fixture.record', { value: 'v' }, { ...run(), idempotencyKey: 'task-1:sub-1:k' });
    expect(out).toMatchObject({ ok: true });
    const seen = JSON.parse((out.ok && (out.output as { text: string }).text) || '{}');
    expect(seen).toEqual({ value: 'v', meta: { [IDEMPOTENCY_META_KEY]: 'task-1:sub-1:k' } });
  });

  it("reports a tool's own error as a failure it does not retry", async () => {
    const gw = gateway(await stdio());
    const out = await gw.call('fixture.refuse', {}, run());
    expect(out).toMatchObject({ ok: false, code: 'tool_failed', attempts: 1 });
    expect(!out.ok && out.message).toContain('refused on purpose');
  });

  it('picks up tools the server adds later (notifications/tools/list_changed)', async () => {
    const src = await stdio();
    const gw = gateway(src);
    expect(src.tools().map((t) => t.name)).not.toContain('fixture.late');
    expect(await gw.call('fixture.late', {}, run())).toMatchObject({ ok: false, code: 'unknown_tool' });
    expect(await gw.call('fixture.add-tool', {}, run())).toMatchObject({ ok: true });
    await waitFor(() => gw.allowedTools().some((t) => t.name === 'fixture.late'), { what: 'the new tool' });
    const late = await gw.call('fixture.late', {}, run());
    expect(late.ok && (late.output as { text: string }).text).toBe('late tool ran');
  });
});
