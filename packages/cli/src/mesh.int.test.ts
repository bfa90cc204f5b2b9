// End to end over real processes: an orchestrator, three researcher replicas and a coder, built
// from dist/, on a real Redis and Chroma. Exactly-once effects, crash recovery and one trace across
// queue hops only show up with real processes, real signals and real BullMQ locks.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeTaskEventEntry, redisKeys, type TaskView } from '@flotilla/contracts';
import { fakeReply, type ReceivedSpan, startFakeOpenAI, startOtlpReceiver, waitFor } from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Mesh, startMesh } from './mesh.js';

/** A local web server the researchers may fetch: /slow answers late, /hold/:id until released. */
async function startSite() {
  const held = new Map<string, ServerResponse[]>();
  const released = new Set<string>();
  const hits: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.push(url.pathname + url.search);
    const answer = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`page ${url.pathname}${url.search}`);
    if (url.pathname === '/slow') {
      setTimeout(answer, Number(url.searchParams.get('ms') ?? 300));
    } else if (url.pathname.startsWith('/hold/')) {
      const id = url.pathname.slice('/hold/'.length);
      if (released.has(id)) return answer();
      held.set(id, [...(held.get(id) ?? []), res]);
      res.on('close', () =>
        held.set(
          id,
          (held.get(id) ?? []).filter((r) => r !== res),
        ),
      );
    } else {
      answer();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    hits,
    release(id: string) {
      released.add(id);
      for (const res of held.get(id) ?? []) res.writeHead(200).end(`page /hold/${id}`);
      held.delete(id);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** POST /v1/tasks; 202 for a new task, 200 when an idempotency key replays an existing one. */
async function submit(mesh: Mesh, body: Record<string, unknown>, status = 202): Promise<string> {
  const res = await fetch(`${mesh.url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(status);
  return ((await res.json()) as { taskId: string }).taskId;
}

const getTask = async (mesh: Mesh, id: string) =>
  (await (await fetch(`${mesh.url}/v1/tasks/${id}`)).json()) as TaskView;

async function settle(mesh: Mesh, id: string, timeoutMs = 45_000): Promise<TaskView> {
  return waitFor(
    async () => {
      const view = await getTask(mesh, id);
      return ['completed', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
    },
    { what: `task ${id} to end`, timeoutMs, intervalMs: 100 },
  );
}

describe('the mesh', () => {
  let mesh: Mesh;
  let site: Awaited<ReturnType<typeof startSite>>;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let redis: Redis;

  beforeAll(async () => {
    site = await startSite();
    otlp = await startOtlpReceiver();
    mesh = await startMesh({
      only: ['researcher', 'coder'],
      replicas: { researcher: 3, coder: 1 },
      // No sandbox: the coder then denies code.run, the path the policy_denied case below checks
      // (the sandbox's own path is sandbox.int.test.ts).
      sandbox: false,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        // Entries without a port allow 80 and 443 only: the site's own port is named.
        HTTP_ALLOWLIST: new URL(site.base).host,
        WORKER_CONCURRENCY: '1',
        // Quick crash recovery: a dead replica's lock expires in 2 s and is noticed within 0.5 s.
        WORKER_LOCK_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '500',
        SHUTDOWN_GRACE_MS: '5000',
      },
    });
    redis = new Redis(mesh.redisUrl);
  }, 120_000);

  afterAll(async () => {
    redis?.disconnect();
    await mesh?.stop();
    await site?.close();
    await otlp?.close();
  }, 120_000);

  it('fans a goal out across all three researchers, running each subtask exactly once', async () => {
    const clauses = Array.from({ length: 6 }, (_, i) => `fetch ${site.base}/slow?ms=400&i=${i}`);
    const taskId = await submit(mesh, { goal: clauses.join('; ') });
    const view = await settle(mesh, taskId);

    expect(view.error).toBeUndefined();
    expect(view.status).toBe('completed');
    expect(view.partial).toBe(false);
    expect(view.answer).toBeTruthy();
    expect(view.subtasks).toHaveLength(6);
    expect(view.subtasks.every((s) => s.role === 'researcher' && s.state === 'completed')).toBe(true);
    // The ledger counts handler starts per subtask: once each.
    expect(view.subtasks.map((s) => s.runs)).toEqual([1, 1, 1, 1, 1, 1]);
    const replicas = new Set(view.subtasks.map((s) => s.replica));
    expect([...replicas].sort()).toEqual(
      mesh.services
        .filter((s) => s.role === 'researcher')
        .map((s) => s.name)
        .sort(),
    );
    // Each page was fetched once: the tool ran once per subtask.
    for (let i = 0; i < 6; i++) expect(site.hits.filter((h) => h.endsWith(`&i=${i}`))).toHaveLength(1);
  });

  it('gives the same task for the same idempotency key', async () => {
    const body = { goal: `fetch ${site.base}/slow?ms=10&i=idem`, idempotencyKey: `idem-${Date.now()}` };
    const first = await submit(mesh, body);
    const second = await submit(mesh, body, 200);
    expect(second).toBe(first);
    await settle(mesh, first);
    expect(site.hits.filter((h) => h.endsWith('&i=idem'))).toHaveLength(1);
  });

  it('reports a denied tool as policy_denied and flags the answer partial', async () => {
    const taskId = await submit(mesh, {
      goal: `fetch ${site.base}/slow?ms=10&i=partial; write code to compute 6 times 7`,
    });
    const view = await settle(mesh, taskId);
    expect(view.status).toBe('completed');
    expect(view.partial).toBe(true);
    const coder = view.subtasks.find((s) => s.role === 'coder');
    expect(coder?.stopReason).toBe('policy_denied');
    expect(view.subtasks.find((s) => s.role === 'researcher')?.state).toBe('completed');
  });

  it('cancels a running task: the running subtask sees its signal', async () => {
    const taskId = await submit(mesh, { goal: `fetch ${site.base}/hold/cancel-me` });
    await waitFor(async () => (await getTask(mesh, taskId)).subtasks[0]?.state === 'active', {
      what: 'subtask running',
    });
    await waitFor(() => site.hits.some((h) => h === '/hold/cancel-me'), { what: 'fetch in flight' });
    const res = await fetch(`${mesh.url}/v1/tasks/${taskId}/cancel`, { method: 'POST' });
    expect(res.status).toBeLessThan(300);
    const view = await settle(mesh, taskId);
    expect(view.status).toBe('cancelled');
    await waitFor(async () => (await getTask(mesh, taskId)).subtasks[0]?.stopReason === 'cancelled', {
      what: 'subtask to stop with cancelled',
    });
  });

  it('carries one trace from POST /v1/tasks through the planner, the queue and a worker to a tool', async () => {
    const taskId = await submit(mesh, { goal: `fetch ${site.base}/slow?ms=10&i=trace` });
    const view = await settle(mesh, taskId);
    expect(view.traceId).toMatch(/^[0-9a-f]{32}$/);
    const inTrace = () => otlp.spans().filter((s) => s.traceId === view.traceId);
    const has = {
      submit: (s: ReceivedSpan) => s.service === 'orchestrator' && s.name === 'task submit',
      plan: (s: ReceivedSpan) => s.service === 'orchestrator' && /plan/.test(s.name),
      agent: (s: ReceivedSpan) => s.service === 'researcher' && s.name === 'agent researcher',
      tool: (s: ReceivedSpan) => s.service === 'researcher' && s.name === 'tool http.get',
    };
    // Each process exports its spans in batches; wait until every kind has arrived, or time out.
    await waitFor(() => Object.values(has).every((p) => inTrace().some(p)), { what: 'spans', timeoutMs: 20_000 }).catch(
      () => undefined,
    );
    const spans = inTrace();
    expect(spans.some(has.submit)).toBe(true);
    expect(spans.some(has.plan)).toBe(true);
    expect(spans.some(has.agent)).toBe(true);
    expect(spans.some(has.tool)).toBe(true);
  });

  it('finishes a subtask whose replica was SIGKILLed mid-run on another replica, once', async () => {
    const taskId = await submit(mesh, { goal: `fetch ${site.base}/hold/kill-me` });
    const started = await waitFor(
      async () => {
        const s = (await getTask(mesh, taskId)).subtasks[0];
        return s?.state === 'active' && s.replica ? s.replica : undefined;
      },
      { what: 'subtask running' },
    );
    await waitFor(() => site.hits.includes('/hold/kill-me'), { what: 'fetch in flight' });
    const victim = mesh.services.find((s) => s.name === started);
    expect(victim).toBeDefined();
    victim?.proc.signal('SIGKILL');
    await victim?.proc.exited;
    site.release('kill-me');

    const view = await settle(mesh, taskId);
    expect(view.status).toBe('completed');
    const sub = view.subtasks[0];
    expect(sub?.state).toBe('completed');
    expect(sub?.replica).not.toBe(started);
    expect(sub?.runs).toBe(2);
    const entries = await redis.xrange(redisKeys(mesh.prefix).taskEvents(taskId), '-', '+');
    const events = entries.flatMap(([, fields]) => decodeTaskEventEntry(fields) ?? []);
    const finished = events.filter((e) => e.type === 'subtask_finished');
    expect(finished).toHaveLength(1);
  });
});

describe('a runaway model', () => {
  let mesh: Mesh;
  let llm: Awaited<ReturnType<typeof startFakeOpenAI>>;

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    // It never stops asking for a tool; only the budget can end the run.
    llm.script(fakeReply.alwaysToolCall('memory_search', { query: 'again' }));
    mesh = await startMesh({
      only: ['researcher'],
      replicas: { researcher: 1 },
      roleEnv: {
        researcher: {
          LLM_PROVIDER: 'openai-compatible',
          LLM_BASE_URL: llm.url,
          LLM_MODEL: 'runaway',
          LLM_API_KEY: 'sk-test-runaway-key-000',
        },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await mesh?.stop();
    await llm?.close();
  }, 120_000);

  it('stops at max_tool_calls when tool calls run out first', async () => {
    const taskId = await submit(mesh, { goal: 'look into something', budget: { maxToolCalls: 3, maxSteps: 20 } });
    const view = await settle(mesh, taskId);
    expect(Object.values(view.stopReasons)).toEqual(['max_tool_calls']);
    expect(view.subtasks[0]?.usage?.toolCalls).toBe(3);
  });

  it('stops at max_steps when model turns run out first', async () => {
    const taskId = await submit(mesh, { goal: 'look into something else', budget: { maxSteps: 2, maxToolCalls: 12 } });
    const view = await settle(mesh, taskId);
    expect(Object.values(view.stopReasons)).toEqual(['max_steps']);
    expect(view.subtasks[0]?.usage?.steps).toBe(2);
  });
});
