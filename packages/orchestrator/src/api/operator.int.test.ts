// Needs a real Redis, real HTTP and real role workers: the kill switch an operator sets through the
// API is a Redis hash that a worker's own tool gateway reads, the queue figures are BullMQ's, and a
// retried job must run again in a real worker. What is under test is the whole path, not a mock of it.

import type { QueueStats } from '@flotilla/contracts';
import { type RoleReplicas, redisKeys, type TaskPage, type VersionFiguresList } from '@flotilla/contracts';
import { defineTool, initTelemetry, type KillSwitchRecord, type ToolOutcome } from '@flotilla/runtime';
import { waitFor } from '@flotilla/test-utils';
import type { FastifyBaseLogger } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FailedJobPage } from '../operator/service.js';
import {
  type Harness,
  silentLog,
  startHarness,
  startRole,
  taskEnded,
  testKeys,
} from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';
import type { Problem } from './schemas.js';

const keys = testKeys({ alice: 'tasks', bob: 'tasks', ops: 'admin' });
type Client = 'alice' | 'bob' | 'ops';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

// /metrics renders the process's global MeterProvider, which the register hook installs in a service.
beforeAll(async () => {
  await initTelemetry({ env: {} });
});

/** A logger that keeps what the operator service logs at warn (its audit lines). */
function auditLog() {
  const lines: Record<string, unknown>[] = [];
  const log = { ...silentLog, warn: (obj: Record<string, unknown>) => lines.push(obj), child: () => log };
  return { lines, log: log as unknown as FastifyBaseLogger };
}

async function api(options: { autorun?: boolean; replan?: boolean; operatorLog?: FastifyBaseLogger } = {}) {
  h = await startHarness({
    llm: offlineLlm(),
    replan: options.replan,
    autorun: options.autorun ?? true,
    listen: true,
    app: { keys: keys.ring },
    ...(options.operatorLog && { operatorLog: options.operatorLog }),
  });
  return h;
}

function client(hh: Harness, who: Client) {
  // Typed as the test expects the answer to be: a body of another shape fails its assertions.
  const call = async <T = Problem & { taskId?: string }>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${hh.url}${path}`, {
      method,
      headers: { ...keys.auth(who), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T,
    };
  };
  return {
    call,
    submit: async (goal: string) => {
      const res = await call('POST', '/v1/tasks', { goal });
      expect(res.status).toBe(202);
      return res.body.taskId as string;
    },
  };
}

describe('the kill switch through the API', () => {
  it("stops a tool in a worker's gateway, and records who and why", async () => {
    const audit = auditLog();
    const hh = await api({ operatorLog: audit.log });
    const runs = { fetch: 0 };
    const outcomes: ToolOutcome[] = [];
    await startRole(hh, {
      role: 'researcher',
      tools: [
        defineTool({
          name: 'web.fetch',
          description: 'fetches',
          input: z.object({ url: z.string() }),
          sideEffects: 'read',
          run: async () => ++runs.fetch,
        }),
      ],
      handler: async (_input, ctx) => {
        outcomes.push(await ctx.tools.call('web.fetch', { url: 'https://example.com' }));
        return { stopReason: 'finish', output: { answer: 'ok' } };
      },
    });
    const ops = client(hh, 'ops');
    const alice = client(hh, 'alice');

    // Control: before the switch, the tool runs.
    await taskEnded(hh, await alice.submit('fetch a page'));
    expect(outcomes.map((o) => o.ok)).toEqual([true]);
    expect(runs.fetch).toBe(1);

    const set = await ops.call<KillSwitchRecord>('PATCH', '/v1/admin/kill-switch', {
      tools: ['web.*'],
      reason: 'incident 42: bad pages',
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      global: false,
      noWrites: false,
      tools: ['web.*'],
      lastChange: { by: 'ops', reason: 'incident 42: bad pages' },
    });

    // The worker applies the announcement on its own subscriber; the task below reaches it only
    // after planning and a queue hop, well after the re-read (measured in the ms).
    await taskEnded(hh, await alice.submit('fetch another page'));
    expect(outcomes[1]).toMatchObject({ ok: false, code: 'kill_switch' });
    expect(runs.fetch).toBe(1);

    // Audited three ways: the state names who and why, the operator actions stream has the record,
    // and a log line says it.
    const read = await ops.call<KillSwitchRecord>('GET', '/v1/admin/kill-switch');
    expect(read.body.lastChange).toMatchObject({ by: 'ops', reason: 'incident 42: bad pages' });
    const actions = await hh.redis.xrange(redisKeys(hh.prefix).operatorActions, '-', '+');
    expect(actions).toHaveLength(1);
    const fields = Object.fromEntries(
      (actions[0]?.[1] ?? []).flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]])),
    ) as Record<string, string>;
    expect(fields).toMatchObject({ action: 'kill_switch', by: 'ops', reason: 'incident 42: bad pages' });
    expect(JSON.parse(fields.patch ?? '{}')).toEqual({ tools: ['web.*'] });
    expect(audit.lines).toContainEqual(
      expect.objectContaining({ action: 'kill_switch', by: 'ops', reason: 'incident 42: bad pages' }),
    );

    // And measured: the switch's state as a gauge, the change as a counter.
    const metrics = (await hh.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^flotilla_kill_switch\{scope="tools",[^}]*\} 1$/m);
    expect(metrics).toMatch(/^flotilla_kill_switch\{scope="global",[^}]*\} 0$/m);
    expect(metrics).toMatch(/^flotilla_operator_actions_total\{action="kill_switch",[^}]*\} [1-9][0-9]*$/m);

    // Switching it back off restarts the tool.
    expect((await ops.call('PATCH', '/v1/admin/kill-switch', { tools: [], reason: 'fixed' })).status).toBe(200);
    await taskEnded(hh, await alice.submit('fetch a third page'));
    expect(outcomes[2]?.ok).toBe(true);
    expect(runs.fetch).toBe(2);
  });

  it('refuses a change without a reason, naming the field', async () => {
    const hh = await api({ autorun: false });
    const res = await client(hh, 'ops').call('PATCH', '/v1/admin/kill-switch', { global: true });
    expect(res.status).toBe(422);
    expect(res.body.errors).toContainEqual(expect.objectContaining({ field: 'reason' }));
    const empty = await client(hh, 'ops').call('PATCH', '/v1/admin/kill-switch', { reason: 'nothing to do' });
    expect(empty.status).toBe(422);
    expect(empty.body.errors).toContainEqual(expect.objectContaining({ field: 'global' }));
    // Nothing was switched.
    expect((await client(hh, 'ops').call<KillSwitchRecord>('GET', '/v1/admin/kill-switch')).body).toMatchObject({
      global: false,
      lastChange: null,
    });
  });
});

describe('operator scope', () => {
  it('answers 403 to a tasks key on every operator operation in the document', async () => {
    const hh = await api({ autorun: false });
    const doc = (await hh.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method, op]) => method !== 'parameters' && op.security?.[0]?.bearer?.[0] === 'admin')
        .map(([method]) => ({
          method: method.toUpperCase(),
          path: path
            .replace('{id}', '00000000-0000-4000-8000-000000000000')
            .replace('{role}', 'researcher')
            .replace('{jobId}', 'some-job'),
        })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(9);
    for (const { method, path } of operations) {
      const body = method === 'PATCH' ? { global: true, reason: 'try' } : undefined;
      const url = path === '/v1/admin/tasks' ? `${path}?owner=alice` : path;
      const denied = await client(hh, 'alice').call(method, url, body);
      expect(denied.status, `${method} ${path}`).toBe(403);
      expect(denied.body.code).toBe('FLOTILLA_FORBIDDEN');
      // Control: the admin key is let through (whatever the operation then answers).
      const allowed = await client(hh, 'ops').call(
        method,
        url,
        method === 'PATCH' ? { tools: [], reason: 'x' } : undefined,
      );
      expect([401, 403], `${method} ${path} with an admin key`).not.toContain(allowed.status);
    }
    // A tasks key changed nothing.
    expect((await client(hh, 'ops').call<KillSwitchRecord>('GET', '/v1/admin/kill-switch')).body.global).toBe(false);
  });
});

describe('queues, failed jobs and retries', () => {
  it('reports the counts of what ran, waits and runs, and job times', async () => {
    const hh = await api();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const seen: string[] = [];
    await startRole(hh, {
      role: 'researcher',
      concurrency: 1,
      handler: async (input) => {
        seen.push(input.question);
        if (input.question.startsWith('hold')) await gate;
        return { stopReason: 'finish', output: { answer: 'ok' } };
      },
    });
    const ops = client(hh, 'ops');
    const alice = client(hh, 'alice');
    for (const goal of ['one', 'two']) await taskEnded(hh, await alice.submit(goal));

    // One job held by the only slot, one waiting behind it.
    await alice.submit('hold this');
    await waitFor(() => seen.includes('hold this'), { what: 'the held job to start' });
    await alice.submit('wait behind it');
    const busy = await waitFor(
      async () => {
        const { body } = await ops.call<{ queues: QueueStats[] }>('GET', '/v1/admin/queues');
        const q = body.queues.find((x) => x.role === 'researcher');
        return q?.waiting === 1 ? q : undefined;
      },
      { what: 'the second job to wait' },
    );
    expect(busy).toMatchObject({ active: 1, waiting: 1, completed: 2, failed: 0 });
    expect(busy.throughput.completedTotal).toBe(2);
    expect(busy.jobMs?.sample).toBe(2);
    expect(busy.jobMs?.p95).toBeGreaterThanOrEqual(busy.jobMs?.p50 ?? Number.POSITIVE_INFINITY);

    release();
    const done = await waitFor(
      async () => {
        const { body } = await ops.call<{ queues: QueueStats[] }>('GET', '/v1/admin/queues');
        const q = body.queues.find((x) => x.role === 'researcher');
        return q?.completed === 4 ? q : undefined;
      },
      { what: 'all four jobs to complete' },
    );
    expect(done).toMatchObject({ active: 0, waiting: 0, failed: 0, throughput: { completedTotal: 4 } });

    // The registry's view: the replica, live, with its version and a heartbeat age.
    const { body: replicas } = await ops.call<{ roles: RoleReplicas[] }>('GET', '/v1/admin/replicas');
    expect(replicas.roles).toEqual([
      {
        role: 'researcher',
        description: 'test researcher',
        replicas: [expect.objectContaining({ replica: 'researcher-1', version: 'test', live: true })],
        scalesToZero: false,
      },
    ]);
    expect(replicas.roles[0]?.replicas[0]?.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
  });

  it('lists a failed job with its reason, and a retry runs it again', { timeout: 30_000 }, async () => {
    // No re-plan: its new subtask would fail too and be a second failed job.
    const hh = await api({ replan: false });
    let failing = true;
    let succeeded = 0;
    await startRole(hh, {
      role: 'researcher',
      handler: async () => {
        // Retryable, so BullMQ spends every attempt and then fails the job for good.
        if (failing) throw Object.assign(new Error('upstream search is down'), { retryable: true });
        succeeded++;
        return { stopReason: 'finish', output: { answer: 'ok' } };
      },
    });
    const ops = client(hh, 'ops');
    const taskId = await client(hh, 'alice').submit('find something');
    const page = await waitFor(
      async () => {
        const { body } = await ops.call<FailedJobPage>('GET', '/v1/admin/queues/researcher/failed');
        return body.jobs?.length === 1 ? body : undefined;
      },
      { what: 'the job to fail for good' },
    );
    expect(page).toMatchObject({ total: 1, nextOffset: null });
    const job = page.jobs[0] as FailedJobPage['jobs'][number];
    expect(job).toMatchObject({ failedReason: 'upstream search is down', attemptsMade: 3, taskId });
    expect((await ops.call<{ queues: QueueStats[] }>('GET', '/v1/admin/queues')).body.queues[0]).toMatchObject({
      failed: 1,
    });

    const ended = await taskEnded(hh, taskId);
    failing = false;
    const retried = await ops.call<{ jobId: string }>('POST', `/v1/admin/queues/researcher/jobs/${job.jobId}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ role: 'researcher', jobId: job.jobId, state: 'waiting' });
    await waitFor(() => succeeded === 1, { what: 'the retried job to run' });
    await waitFor(
      async () => (await ops.call<FailedJobPage>('GET', '/v1/admin/queues/researcher/failed')).body.total === 0,
      {
        what: 'the job to leave the failed list',
      },
    );
    // The task had ended (its aggregation ran without the failed subtask) and stays as it was.
    expect((await hh.orchestrator.store.get(taskId))?.status).toBe(ended.status);
    // It is no longer failed: a second retry is refused; an unknown job or role is a 404.
    const again = await ops.call('POST', `/v1/admin/queues/researcher/jobs/${job.jobId}/retry`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('FLOTILLA_JOB_NOT_FAILED');
    expect((await ops.call('POST', '/v1/admin/queues/researcher/jobs/nope/retry')).status).toBe(404);
    expect((await ops.call('GET', '/v1/admin/queues/nobody/failed')).status).toBe(404);
    // The retry is audited with who did it.
    const actions = await hh.redis.xrange(redisKeys(hh.prefix).operatorActions, '-', '+');
    expect(actions.map(([, f]) => f.join(' '))).toEqual([
      expect.stringMatching(/action retry_job by ops role researcher jobId /),
    ]);
  });
});

describe('figures per image version', () => {
  it("tells a failing canary's attempts from the stable version's, over the window asked for", {
    timeout: 60_000,
  }, async () => {
    const hh = await api();
    const since = Date.now();
    await startRole(hh, { role: 'researcher', replicas: ['stable-1'], concurrency: 2 });
    // A canary whose every attempt throws (the rollout drill's image): BullMQ retries its jobs,
    // which the stable replica then runs, so no task is lost to it.
    await startRole(hh, {
      role: 'researcher',
      replicas: ['canary-1'],
      concurrency: 2,
      env: { SERVICE_VERSION: 'canary', FAULT_INJECT_FAIL_RATIO: '1' },
    });
    const ops = client(hh, 'ops');
    const alice = client(hh, 'alice');
    const figures = await waitFor(
      async () => {
        await taskEnded(hh, await alice.submit('one more'));
        const { body } = await ops.call<VersionFiguresList>(
          'GET',
          `/v1/admin/queues/researcher/versions?since=${since}`,
        );
        const canary = body.versions?.find((v) => v.version === 'canary');
        return canary && canary.jobs > 0 ? body : undefined;
      },
      { what: 'the canary to take a job', timeoutMs: 45_000 },
    );
    const stable = figures.versions.find((v) => v.version === 'test');
    const canary = figures.versions.find((v) => v.version === 'canary');
    expect(canary).toMatchObject({ errorRate: 1, replicas: ['canary-1'] });
    expect(canary?.errors).toBe(canary?.jobs);
    expect(stable).toMatchObject({ errors: 0, errorRate: 0, replicas: ['stable-1'] });
    expect(stable?.p95).toBeGreaterThanOrEqual(stable?.p50 ?? Number.POSITIVE_INFINITY);
    expect(figures.since).toBe(new Date(since).toISOString());

    // A window that starts later sees none of it; an ISO time is read as one.
    const later = await ops.call<VersionFiguresList>(
      'GET',
      `/v1/admin/queues/researcher/versions?since=${new Date(Date.now() + 60_000).toISOString()}`,
    );
    expect(later.body.versions).toEqual([]);
    const bad = await ops.call('GET', '/v1/admin/queues/researcher/versions?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.errors?.[0]?.field).toBe('query.since');
    expect((await ops.call('GET', '/v1/admin/queues/nobody/versions')).status).toBe(404);
  });
});

describe("every tenant's tasks", () => {
  it("lets the operator list and read both tenants' tasks", async () => {
    const hh = await api({ autorun: false });
    const ops = client(hh, 'ops');
    const a = await client(hh, 'alice').submit('alice goal');
    const b = await client(hh, 'bob').submit('bob goal');

    const alices = await ops.call<TaskPage>('GET', '/v1/admin/tasks?owner=alice');
    expect(alices.status).toBe(200);
    expect(alices.body.tasks.map((t) => t.taskId)).toEqual([a]);
    const bobs = await ops.call<TaskPage>('GET', '/v1/admin/tasks?owner=bob&status=queued');
    expect(bobs.body.tasks.map((t) => t.taskId)).toEqual([b]);

    for (const [id, owner, goal] of [
      [a, 'alice', 'alice goal'],
      [b, 'bob', 'bob goal'],
    ] as const) {
      const task = await ops.call('GET', `/v1/admin/tasks/${id}`);
      expect(task.status).toBe(200);
      expect(task.body).toMatchObject({ taskId: id, owner, goal });
    }
    expect((await ops.call('GET', '/v1/admin/tasks/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const noOwner = await ops.call('GET', '/v1/admin/tasks');
    expect(noOwner.status).toBe(400);
    expect(noOwner.body.errors).toContainEqual(expect.objectContaining({ field: 'query.owner' }));
  });
});
