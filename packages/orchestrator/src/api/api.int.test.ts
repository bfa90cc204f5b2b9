// Needs a real Redis: task state, idempotency keys, the plan queue and the rate limiter all live there.
import { queueNames } from '@flotilla/contracts';
import { startRedis, waitFor } from '@flotilla/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startRole } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** The API without running plan/aggregate workers: requests only enqueue, nothing plans. */
async function api(app: Parameters<typeof startHarness>[0]['app'] = {}) {
  h = await startHarness({ llm: offlineLlm(), autorun: false, app });
  return h;
}

const post = (hh: Harness, payload: unknown, headers: Record<string, string> = {}) =>
  hh.app.inject({ method: 'POST', url: '/v1/tasks', payload: payload as object, headers });

function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, status: number) {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const body = res.json() as {
    status: number;
    title: string;
    detail: string;
    errors?: { field: string; message: string }[];
  };
  expect(body.status).toBe(status);
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at /);
  return body;
}

describe('POST /v1/tasks and GET /v1/tasks/:id', () => {
  it('accepts a goal with 202 and links, and shows the queued task', async () => {
    const hh = await api();
    const res = await post(hh, {
      goal: 'Compare Redis and Postgres',
      budget: { maxSteps: 5 },
      metadata: { team: 'a' },
    });
    expect(res.statusCode).toBe(202);
    const body = res.json() as { taskId: string; status: string; links: { self: string; events: string } };
    expect(body.status).toBe('queued');
    expect(body.links).toEqual({ self: `/v1/tasks/${body.taskId}`, events: `/v1/tasks/${body.taskId}/events` });
    expect(res.headers.location).toBe(body.links.self);

    const view = (await hh.app.inject({ method: 'GET', url: body.links.self })).json();
    expect(view).toMatchObject({
      taskId: body.taskId,
      status: 'queued',
      goal: 'Compare Redis and Postgres',
      budget: { maxSteps: 5 },
    });
    expect(await hh.orchestrator.queues.plan.getJob(body.taskId)).toBeDefined();
  });

  it('404s an unknown task and 400s a malformed id, naming the field', async () => {
    const hh = await api();
    const missing = await hh.app.inject({ method: 'GET', url: '/v1/tasks/00000000-0000-4000-8000-000000000000' });
    expectProblem(missing, 404);
    const bad = expectProblem(await hh.app.inject({ method: 'GET', url: '/v1/tasks/nope' }), 400);
    expect(bad.errors?.[0]?.field).toBe('path.id');
    expectProblem(await hh.app.inject({ method: 'GET', url: '/v1/nothing-here' }), 404);
  });

  it('422s a body that breaks the schema, naming each field', async () => {
    const hh = await api();
    const body = expectProblem(await post(hh, { goal: '', budget: { maxSteps: -1, maxFun: 2 }, extra: true }), 422);
    const fields = body.errors?.map((e) => e.field).sort();
    expect(fields).toEqual(['budget.maxFun', 'budget.maxSteps', 'extra', 'goal']);
  });

  it('400s malformed JSON and prototype-pollution keys, 415s other media types, 413s huge bodies', async () => {
    const hh = await api();
    const raw = (payload: string, contentType = 'application/json') =>
      hh.app.inject({ method: 'POST', url: '/v1/tasks', payload, headers: { 'content-type': contentType } });
    expectProblem(await raw('{"goal": '), 400);
    expectProblem(await raw('{"goal":"x","__proto__":{"polluted":true}}'), 400);
    expectProblem(await raw('{"goal":"x","constructor":{"prototype":{"polluted":true}}}'), 400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const unsupported = expectProblem(await raw('goal=x', 'text/plain'), 415);
    expect(unsupported.errors?.[0]?.field).toBe('header.content-type');
    expectProblem(await raw(JSON.stringify({ goal: 'x'.repeat(70 * 1024) })), 413);
    expectProblem(await raw(''), 400);
  });

  it('400s a malformed Idempotency-Key header', async () => {
    const hh = await api();
    const body = expectProblem(await post(hh, { goal: 'x' }, { 'idempotency-key': 'has spaces!' }), 400);
    expect(body.errors?.[0]?.field).toBe('header.idempotency-key');
  });
});

describe('a Redis outage', () => {
  it('answers 503 with a problem body and Retry-After, then recovers', async () => {
    const redis = await startRedis({ reuse: false });
    try {
      const hh = await startHarness({ llm: offlineLlm(), autorun: false, redisUrl: redis.url });
      h = hh;
      expect((await post(hh, { goal: 'before' })).statusCode).toBe(202);
      await redis.kill?.();
      const down = await post(hh, { goal: 'during' });
      expectProblem(down, 503);
      expect(down.headers['retry-after']).toBe('2');
      await redis.restart?.();
      await waitFor(async () => (await post(hh, { goal: 'after' })).statusCode === 202, { what: 'the API to recover' });
      await hh.close();
      h = undefined;
    } finally {
      await redis.stop();
    }
  });
});

describe('idempotency', () => {
  it('gives the same task and one plan job for the same key (body or header), and 409s a different request', async () => {
    const hh = await api();
    const first = await post(hh, { goal: 'same goal', idempotencyKey: 'key-1' });
    const again = await post(hh, { goal: 'same goal' }, { 'idempotency-key': 'key-1' });
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const id = (first.json() as { taskId: string }).taskId;
    expect((again.json() as { taskId: string }).taskId).toBe(id);

    const counts = await hh.orchestrator.queues.plan.getJobCounts('waiting', 'active', 'completed', 'delayed');
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);

    const conflict = expectProblem(await post(hh, { goal: 'another goal', idempotencyKey: 'key-1' }), 409);
    expect(conflict.errors?.[0]?.field).toBe('idempotencyKey');
  });

  it('makes one task when the same key arrives concurrently', async () => {
    const hh = await api();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => post(hh, { goal: 'race', idempotencyKey: 'race-1' })),
    );
    const ids = new Set(results.map((r) => (r.json() as { taskId: string }).taskId));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.statusCode === 202)).toHaveLength(1);
  });
});

describe('auth, rate limit, roles, openapi', () => {
  const token = 'test-token-0123456789abcdef';

  it('requires the bearer token on /v1 but not on health routes or the OpenAPI document', async () => {
    const hh = await api({ apiToken: token });
    const none = expectProblem(await post(hh, { goal: 'x' }), 401);
    expect(none.title).toBe('Unauthorized');
    expect((await post(hh, { goal: 'x' }, { authorization: 'Bearer wrong-token' })).statusCode).toBe(401);
    expect((await post(hh, { goal: 'x' }, { authorization: `Bearer ${token}` })).statusCode).toBe(202);
    expect((await hh.app.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(200);
    expect((await hh.app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
  });

  it('429s a client over its rate with a problem body and Retry-After', async () => {
    const hh = await api({ rateLimit: { max: 3, timeWindowMs: 60_000 } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await hh.app.inject({ method: 'GET', url: '/v1/roles' })).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const res = await hh.app.inject({ method: 'GET', url: '/v1/roles' });
    expectProblem(res, 429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('lists live roles with replicas and input schemas', async () => {
    const hh = await api();
    const role = await startRole(hh, { role: 'researcher', replicas: ['r-1', 'r-2'] });
    try {
      const body = (await hh.app.inject({ method: 'GET', url: '/v1/roles' })).json() as { roles: unknown[] };
      expect(body.roles).toEqual([
        expect.objectContaining({
          role: 'researcher',
          replicas: 2,
          inputSchema: expect.objectContaining({ type: 'object' }),
        }),
      ]);
    } finally {
      await role.close();
    }
  });

  it('serves an OpenAPI 3.1 document built from the schemas', async () => {
    const hh = await api();
    const doc = (await hh.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/tasks', '/v1/tasks/{id}', '/v1/tasks/{id}/events', '/v1/roles']),
    );
    expect(Object.keys(doc.components.schemas.TaskRequest?.properties ?? {})).toEqual(
      expect.arrayContaining(['goal', 'budget', 'idempotencyKey', 'metadata']),
    );
  });

  it('puts planning on the plan queue with the task id as job id', async () => {
    const hh = await api();
    const { taskId } = (await post(hh, { goal: 'x' })).json() as { taskId: string };
    const job = await hh.orchestrator.queues.plan.getJob(taskId);
    expect(job?.queueName).toBe(queueNames.plan);
    expect(job?.data).toEqual({ taskId });
  });
});
