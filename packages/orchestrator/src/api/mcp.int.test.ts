// Needs a real Redis and a listening API: flotilla's MCP server is driven over real HTTP by the
// official SDK's own client, the way an IDE or a desktop agent would connect to it.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startRole, taskEnded, testKeys } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

const keys = testKeys({ alice: 'tasks', bob: 'tasks', ops: 'admin' });

let h: Harness | undefined;
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await h?.close();
  h = undefined;
});

async function connect(hh: Harness, who: 'alice' | 'bob' | 'ops' | 'nobody') {
  const client = new Client({ name: 'test-ide', version: '1.0.0' });
  const headers: Record<string, string> = who === 'nobody' ? {} : keys.auth(who);
  await client.connect(new StreamableHTTPClientTransport(new URL(`${hh.url}/mcp`), { requestInit: { headers } }));
  clients.push(client);
  return client;
}

const call = async (
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
  onprogress?: (p: Progress) => void,
) =>
  (await client.callTool(
    { name, arguments: args },
    undefined,
    onprogress ? { onprogress, timeout: 60_000 } : undefined,
  )) as CallToolResult;
const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

describe('flotilla as an MCP server', () => {
  it('lists its tools and roles, takes a goal, reports progress while waiting, and returns the answer', async () => {
    const hh = await startHarness({ llm: offlineLlm(), listen: true, app: { keys: keys.ring } });
    h = hh;
    await startRole(hh, { role: 'researcher' });
    const alice = await connect(hh, 'alice');

    const { tools } = await alice.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['cancel_task', 'get_task', 'list_roles', 'submit_task']);
    expect(tools.find((t) => t.name === 'submit_task')?.inputSchema.required).toEqual(['goal']);

    const roles = await call(alice, 'list_roles');
    expect(roles.structuredContent).toEqual({ roles: [{ role: 'researcher', description: 'test researcher' }] });

    const progress: Progress[] = [];
    const done = await call(alice, 'submit_task', { goal: 'Compare Redis and Postgres', waitSeconds: 60 }, (p) =>
      progress.push(p),
    );
    expect(done.isError).toBeFalsy();
    const view = done.structuredContent as { taskId: string; status: string; answer?: string };
    expect(view.status).toBe('completed');
    expect(view.answer).toEqual(expect.any(String));
    // One notification per task event, in order, ending with the task's end.
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.map((p) => p.progress)).toEqual(progress.map((_, i) => i + 1));
    expect(progress.map((p) => p.message)).toContain('subtask s1 (researcher) started');
    expect(progress.at(-1)?.message).toMatch(/^completed/);

    const again = await call(alice, 'get_task', { taskId: view.taskId });
    expect(again.structuredContent).toMatchObject({ taskId: view.taskId, status: 'completed', answer: view.answer });
  });

  it('submits without waiting, cancels, and keeps tenants apart', async () => {
    // Nothing plans: a submitted task stays queued until cancelled.
    const hh = await startHarness({ llm: offlineLlm(), listen: true, autorun: false, app: { keys: keys.ring } });
    h = hh;
    const alice = await connect(hh, 'alice');
    const submitted = await call(alice, 'submit_task', { goal: 'Something slow', budget: { maxSteps: 3 } });
    const { taskId, status } = submitted.structuredContent as { taskId: string; status: string };
    expect(status).toBe('queued');

    // Another tenant's task does not exist for bob, exactly as over HTTP.
    const bob = await connect(hh, 'bob');
    const peek = await call(bob, 'get_task', { taskId });
    expect(peek.isError).toBe(true);
    expect(text(peek)).toMatch(/does not exist/);
    expect((await call(bob, 'cancel_task', { taskId })).isError).toBe(true);

    const cancelled = await call(alice, 'cancel_task', { taskId });
    expect(cancelled.structuredContent).toMatchObject({ taskId, status: 'cancelled' });
    expect((await taskEnded(hh, taskId)).status).toBe('cancelled');
  });

  it('answers bad input with MCP errors, never a crash', async () => {
    const hh = await startHarness({ llm: offlineLlm(), listen: true, autorun: false, app: { keys: keys.ring } });
    h = hh;
    const alice = await connect(hh, 'alice');

    const blank = await call(alice, 'submit_task', { goal: '   ' });
    expect(blank.isError).toBe(true);
    expect(text(blank)).toMatch(/goal/);
    const badBudget = await call(alice, 'submit_task', { goal: 'x', budget: { maxSteps: -1 } });
    expect(badBudget.isError).toBe(true);
    expect(text(badBudget)).toMatch(/maxSteps/);
    const missing = await call(alice, 'get_task', { taskId: '00000000-0000-4000-8000-000000000000' });
    expect(missing.isError).toBe(true);
    expect(text(missing)).not.toMatch(/\n\s+at /);
    const unknown = await alice.callTool({ name: 'drop_tables', arguments: {} }).then(
      (r) => (r as CallToolResult).isError && text(r as CallToolResult),
      (err: Error) => err.message,
    );
    expect(unknown).toMatch(/drop_tables/);

    // Not JSON-RPC at all: a JSON-RPC error over HTTP 400, and the server goes on answering.
    const junk = await fetch(`${hh.url}/mcp`, {
      method: 'POST',
      headers: {
        ...keys.auth('alice'),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(junk.status).toBe(400);
    expect(await junk.json()).toMatchObject({ jsonrpc: '2.0', error: { code: expect.any(Number) } });
    expect((await call(alice, 'list_roles')).isError).toBeFalsy();
  });

  it('needs an API key with the tasks scope, as /v1 does', async () => {
    const hh = await startHarness({ llm: offlineLlm(), listen: true, autorun: false, app: { keys: keys.ring } });
    h = hh;
    await expect(connect(hh, 'nobody')).rejects.toThrow(/401/);
    await expect(connect(hh, 'ops')).rejects.toThrow(/403/);
  });
});
