// Needs a real Redis: task state, idempotency keys, the plan queue and the rate limiter all live there.
import { once } from 'node:events';
import { connect } from 'node:net';
import { queueNames } from '@flotilla/contracts';
import { startRedis, waitFor } from '@flotilla/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_OWNER } from '../tasks/store.js';
import { type Harness, startHarness, startRole, testKeys } from '../testing/harness.test.helpers.js';
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
    code: string;
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
    const undecodable = expectProblem(await hh.app.inject({ method: 'GET', url: '/v1/tasks/%zz' }), 400);
    expect(undecodable.errors?.[0]?.field).toBe('path');
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

  it('400s a malformed Idempotency-Key header, empty included, as its schema says', async () => {
    const hh = await api();
    for (const key of ['has spaces!', '', 'k'.repeat(201)]) {
      const body = expectProblem(await post(hh, { goal: 'x' }, { 'idempotency-key': key }), 400);
      expect(body.errors?.[0]?.field).toBe('header.idempotency-key');
    }
    expect((await post(hh, { goal: 'x' }, { 'idempotency-key': 'k'.repeat(200) })).statusCode).toBe(202);
  });

  it('counts lengths in code points, as JSON Schema does, and refuses blank goals', async () => {
    const hh = await api();
    // 5000 emoji are 10000 UTF-16 units: within maxLength 8000 all the same.
    expect((await post(hh, { goal: '😀'.repeat(5000) })).statusCode).toBe(202);
    expectProblem(await post(hh, { goal: 'x'.repeat(8001) }), 422);
    const blank = expectProblem(await post(hh, { goal: ' \t\u3000\ufeff' }), 422);
    expect(blank.errors).toEqual([{ field: 'goal', message: 'must not be blank' }]);
  });

  it('accepts lone surrogates as U+FFFD and never sends one back', async () => {
    const hh = await api();
    const raw = (payload: string) =>
      hh.app.inject({ method: 'POST', url: '/v1/tasks', payload, headers: { 'content-type': 'application/json' } });
    const res = await raw('{"goal":"a\\ud800b","metadata":{"k":"\\udc00"}}');
    expect(res.statusCode).toBe(202);
    const { taskId } = res.json() as { taskId: string };
    const view = await hh.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}` });
    expect((view.json() as { goal: string }).goal).toBe('a\ufffdb');
    // An error echoing a bad key: the field name arrives well-formed, not as a \ud800 escape.
    const bad = await raw(`{"goal":"x","metadata":{"\\ud800${'k'.repeat(64)}":1}}`);
    expect(bad.statusCode).toBe(422);
    expect(bad.body).not.toMatch(/\\ud800/i);
    expect(bad.body).toContain('metadata.\ufffd');
  });
});

describe('methods a path does not serve', () => {
  it('answer 405 with Allow (no HEAD or OPTIONS twins); unknown paths 404', async () => {
    const hh = await api({ keys: testKeys({ client: 'tasks' }).ring });
    const cases: [string, string, string][] = [
      ['DELETE', '/v1/tasks/00000000-0000-4000-8000-000000000000', 'GET'],
      ['PUT', '/v1/tasks', 'GET, POST'],
      ['GET', '/v1/tasks/00000000-0000-4000-8000-000000000000/cancel', 'POST'],
      ['HEAD', '/livez', 'GET'],
      ['OPTIONS', '/v1/roles', 'GET'],
    ];
    for (const [method, url, allow] of cases) {
      const res = await hh.app.inject({ method: method as 'GET', url });
      expect(res.statusCode, `${method} ${url}`).toBe(405);
      expect(res.headers.allow).toBe(allow);
      if (method !== 'HEAD') expect((res.json() as { code: string }).code).toBe('FLOTILLA_METHOD_NOT_ALLOWED');
    }
    // The method decides before the body does: an unparseable body on a wrong method is still a 405.
    const withBody = await hh.app.inject({
      method: 'PATCH',
      url: '/v1/tasks',
      payload: '{',
      headers: { 'content-type': 'application/json' },
    });
    expect(withBody.statusCode).toBe(405);
    expectProblem(await hh.app.inject({ method: 'DELETE', url: '/v1/nothing-here' }), 404);
  });
});

describe('POST /v1/tasks/:id/cancel', () => {
  it('cancels with 202 and the view, again with 202, keeps the task readable, 404s unknown ids', async () => {
    const hh = await api();
    const { taskId } = (await post(hh, { goal: 'x' })).json() as { taskId: string };
    const cancel = () => hh.app.inject({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` });
    const first = await cancel();
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ taskId, status: 'cancelled' });
    expect((await cancel()).statusCode).toBe(202);
    expect((await hh.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}` })).json()).toMatchObject({
      status: 'cancelled',
    });
    const unknown = '00000000-0000-4000-8000-000000000000';
    expectProblem(await hh.app.inject({ method: 'POST', url: `/v1/tasks/${unknown}/cancel` }), 404);
    // Ids compare case-insensitively (RFC 9562): the upper-case spelling names the same task.
    const upper = await hh.app.inject({ method: 'GET', url: `/v1/tasks/${taskId.toUpperCase()}` });
    expect(upper.statusCode).toBe(200);
  });
});

describe('GET /v1/tasks', () => {
  type Page = { tasks: { taskId: string; status: string; goal: string }[]; nextCursor: string | null };
  const list = async (hh: Harness, query = '') => {
    const res = await hh.app.inject({ method: 'GET', url: `/v1/tasks${query}` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Page;
  };

  it('lists newest first, a page at a time, until nextCursor is null', async () => {
    const hh = await api();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(((await post(hh, { goal: `goal ${i}` })).json() as { taskId: string }).taskId);
    const newestFirst = [...ids].reverse();

    expect((await list(hh)).tasks.map((t) => t.taskId)).toEqual(newestFirst);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Page = await list(hh, `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      seen.push(...page.tasks.map((t) => t.taskId));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(newestFirst);
    expect(pages).toBe(3);
    expect((await list(hh, '?limit=5')).nextCursor).toBeNull();
  });

  it('filters by status (repeatable) and drops tasks that expired', async () => {
    const hh = await api();
    const submit = async (goal: string) => ((await post(hh, { goal })).json() as { taskId: string }).taskId;
    const [a, b, c] = [await submit('a'), await submit('b'), await submit('c')];
    await hh.app.inject({ method: 'POST', url: `/v1/tasks/${b}/cancel` });

    expect((await list(hh, '?status=cancelled')).tasks.map((t) => t.taskId)).toEqual([b]);
    expect((await list(hh, '?status=queued')).tasks.map((t) => t.taskId)).toEqual([c, a]);
    expect((await list(hh, '?status=queued&status=cancelled')).tasks).toHaveLength(3);
    expect((await list(hh, '?status=completed')).tasks).toEqual([]);

    // Task c's hash expires (as its TTL would make it): it is not listed, and leaves the index.
    await hh.redis.del(hh.orchestrator.tasks.store.keys.task(c));
    expect((await list(hh)).tasks.map((t) => t.taskId)).toEqual([b, a]);
    const index = hh.orchestrator.tasks.store.keys.taskIndex(DEFAULT_OWNER);
    expect((await hh.redis.zrange(index, 0, -1)).some((m) => m.endsWith(c))).toBe(false);
  });

  it('drops index entries of expired tasks when a task is created, even if nobody lists', async () => {
    const hh = await api();
    const index = hh.orchestrator.tasks.store.keys.taskIndex(DEFAULT_OWNER);
    const first = ((await post(hh, { goal: 'old' })).json() as { taskId: string }).taskId;
    await hh.redis.del(hh.orchestrator.tasks.store.keys.task(first));
    expect(await hh.redis.zcard(index)).toBe(1);
    await post(hh, { goal: 'new' });
    const members = await hh.redis.zrange(index, 0, -1);
    expect(members).toHaveLength(1);
    expect(members[0]).not.toContain(first);
  });

  it("lists only the owner's tasks", async () => {
    const hh = await api();
    await post(hh, { goal: 'mine' });
    const options = { limit: 10, cursor: undefined, statuses: undefined };
    expect((await hh.orchestrator.tasks.list(DEFAULT_OWNER, options)).tasks).toHaveLength(1);
    expect((await hh.orchestrator.tasks.list('another-tenant', options)).tasks).toEqual([]);
  });

  it('400s malformed query parameters, naming each', async () => {
    const hh = await api();
    for (const [query, field] of [
      ['?limit=0', 'query.limit'],
      ['?limit=101', 'query.limit'],
      ['?limit=0x10', 'query.limit'],
      ['?limit=1&limit=2', 'query.limit'],
      ['?cursor=abc', 'query.cursor'],
      ['?status=done', 'query.status.0'],
    ]) {
      const body = expectProblem(await hh.app.inject({ method: 'GET', url: `/v1/tasks${query}` }), 400);
      expect(
        body.errors?.map((e) => e.field),
        query,
      ).toContain(field);
    }
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

describe('a replica shutting down', () => {
  it('answers /v1 requests that still reach it 503 with a problem and Retry-After', async () => {
    const hh = await startHarness({ llm: offlineLlm(), autorun: false, listen: true });
    h = hh;
    const port = Number(new URL(hh.url).port);
    // A connection the server can't drop as idle while it closes: a request whose body has not
    // arrived yet (the 100 Continue proves the server is reading it). The second request, sent
    // behind that body once the server stops accepting connections, reaches a closing server.
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => {
      received += d.toString();
    });
    const ended = once(socket, 'close');
    const body = JSON.stringify({ goal: 'x' });
    socket.write(
      `POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await waitFor(() => received.includes('100 Continue'), { what: 'the server to read the first request' });
    const closed = hh.app.close();
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const probe = connect(port, '127.0.0.1');
          probe.on('connect', () => resolve(false)).on('error', () => resolve(true));
          probe.on('connect', () => probe.destroy());
        }),
      { what: 'the server to stop accepting connections' },
    );
    socket.write(`${body}GET /v1/roles HTTP/1.1\r\nHost: x\r\n\r\n`);
    await Promise.all([closed, ended]);
    const second = received.slice(received.lastIndexOf('HTTP/1.1 '));
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(second).toMatch(/content-type: application\/problem\+json/i);
    expect(second).toMatch(/retry-after: 2/i);
    expect(second).toContain('"code":"FLOTILLA_UNAVAILABLE"');
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

  it('409s a header and a body key that differ: each is valid, together they contradict', async () => {
    const hh = await api();
    const res = await post(hh, { goal: 'x', idempotencyKey: 'body-key' }, { 'idempotency-key': 'header-key' });
    const body = expectProblem(res, 409);
    expect(body.code).toBe('FLOTILLA_IDEMPOTENCY_CONFLICT');
    expect(body.errors?.[0]?.field).toBe('idempotencyKey');
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
  it('requires an API key on /v1 but not on health routes or the OpenAPI document', async () => {
    const keys = testKeys({ client: 'tasks' });
    const hh = await api({ keys: keys.ring });
    const none = expectProblem(await post(hh, { goal: 'x' }), 401);
    expect(none.title).toBe('Unauthorized');
    expect((await post(hh, { goal: 'x' }, { authorization: 'Bearer wrong-token' })).statusCode).toBe(401);
    expect((await post(hh, { goal: 'x' }, keys.auth('client'))).statusCode).toBe(202);
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
    // The counters live in Redis under the prefix and expire with their window: a counter without an
    // expiry (PTTL -1) would lock its client out for good and never leave Redis.
    const counters = await hh.redis.keys(`${hh.prefix}:ratelimit:*`);
    expect(counters).toHaveLength(1);
    for (const key of counters) {
      const ttl = await hh.redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
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

  it('serves an OpenAPI 3.2 document built from the schemas', async () => {
    const hh = await api();
    const doc = (await hh.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(doc.openapi).toBe('3.2.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/tasks',
        '/v1/tasks/{id}',
        '/v1/tasks/{id}/cancel',
        '/v1/tasks/{id}/events',
        '/v1/roles',
      ]),
    );
    expect(Object.keys(doc.paths['/v1/tasks/{id}'] as object)).not.toContain('delete');
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
