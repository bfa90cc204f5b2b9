// End to end over real processes: a researcher of the local mesh takes tools from the reference MCP
// server (@modelcontextprotocol/server-everything, a process on loopback), and the offline model
// calls one. Only the real chain shows the call in the task's one trace: API, queue, worker, gateway.
import { createRequire } from 'node:module';
import type { TaskView } from '@flotilla/contracts';
import { freePort, type RunningProcess, startOtlpReceiver, startProcess, stopAll, waitFor } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Mesh, startMesh } from './mesh.js';

const everythingMain = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

describe('a researcher with an MCP server', () => {
  let mesh: Mesh;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let everything: RunningProcess;

  beforeAll(async () => {
    const port = await freePort();
    everything = startProcess(process.execPath, [everythingMain, 'streamableHttp'], { env: { PORT: String(port) } });
    const url = `http://127.0.0.1:${port}/mcp`;
    await waitFor(async () => (await fetch(url).catch(() => undefined)) !== undefined, { what: 'the MCP server' });
    otlp = await startOtlpReceiver();
    mesh = await startMesh({
      only: ['researcher'],
      replicas: { researcher: 1 },
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url },
      roleEnv: {
        researcher: {
          MCP_SERVERS: JSON.stringify([{ name: 'everything', url }]),
          // The offline model calls every tool it is offered whose arguments it can fill: offer one.
          TOOLS_ALLOWLIST: 'everything.echo',
        },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await mesh?.stop();
    await otlp?.close();
    await stopAll(everything ? [everything] : []);
  }, 120_000);

  it('calls <server>.<tool> through the gateway, and the call is in the task trace', async () => {
    const res = await fetch(`${mesh.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ goal: 'say hello over MCP' }),
    });
    expect(res.status).toBe(202);
    const { taskId } = (await res.json()) as { taskId: string };
    const view = await waitFor(
      async () => {
        const v = (await (await fetch(`${mesh.url}/v1/tasks/${taskId}`)).json()) as TaskView;
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
      },
      { what: 'the task to end', timeoutMs: 45_000, intervalMs: 100 },
    );
    expect(view.status).toBe('completed');
    expect(view.partial).toBe(false);
    // The server's reply came back as the researcher's observation, and so into the answer.
    expect(view.answer).toContain('Echo: say hello over MCP');

    const researcher = mesh.services.find((s) => s.role === 'researcher');
    const audit = researcher?.proc
      .jsonLines()
      .map((l) => l.audit as Record<string, unknown> | undefined)
      .find((a) => a?.tool === 'everything.echo');
    expect(audit).toMatchObject({ outcome: 'ok', sideEffects: 'read', taskId, traceId: view.traceId });

    const isTool = (s: { traceId: string; service: string; name: string }) =>
      s.traceId === view.traceId && s.service === 'researcher' && s.name === 'tool everything.echo';
    const span = await waitFor(() => otlp.spans().find(isTool), { what: 'the tool span', timeoutMs: 20_000 });
    expect(span.attributes).toMatchObject({ 'flotilla.tool': 'everything.echo', 'flotilla.tool.outcome': 'ok' });
  });
});
