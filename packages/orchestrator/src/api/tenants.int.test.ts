// Needs a real Redis and real HTTP: what one tenant may see of another's lives in Redis (task
// records, the per-owner index, idempotency keys, rate-limit counters), and the doors are the API's
// routes as a client reaches them over a socket, event stream included.
import type { SubtaskEnvelope } from '@flotilla/contracts';
import { waitFor } from '@flotilla/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startRole, testKeys } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const keys = testKeys({ alice: 'tasks', bob: 'tasks', ops: 'admin' });
type Client = 'alice' | 'bob' | 'ops';

async function api(
  options: { autorun?: boolean; rateLimit?: { max: number; timeWindowMs: number }; maxOpen?: number } = {},
) {
  h = await startHarness({
    llm: offlineLlm(),
    autorun: options.autorun ?? false,
    maxOpenTasksPerTenant: options.maxOpen ?? 0,
    listen: true,
    app: { keys: keys.ring, ...(options.rateLimit && { rateLimit: options.rateLimit }) },
  });
  return h;
}

function client(hh: Harness, who: Client) {
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${hh.url}${path}`, {
      method,
      headers: { ...keys.auth(who), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return {
    call,
    submit: async (goal: string, idempotencyKey?: string) => {
      const res = await call('POST', '/v1/tasks', { goal, ...(idempotencyKey && { idempotencyKey }) });
      return { status: res.status, body: (await res.json()) as { taskId: string; detail?: string } };
    },
  };
}

describe('tenants', () => {
  it("cannot read, follow, cancel or list another tenant's task: 404, as if it did not exist", async () => {
    const hh = await api();
    const alice = client(hh, 'alice');
    const bob = client(hh, 'bob');
    const { status, body } = await alice.submit('alice only');
    expect(status).toBe(202);
    const id = body.taskId;

    for (const [method, path] of [
      ['GET', `/v1/tasks/${id}`],
      ['GET', `/v1/tasks/${id}/events`],
      ['POST', `/v1/tasks/${id}/cancel`],
    ] as const) {
      const res = await bob.call(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('FLOTILLA_NOT_FOUND');
      // The same answer a task that never existed gets: nothing tells bob it is there.
      const missing = await bob.call(method, path.replace(id, '00000000-0000-4000-8000-000000000000'));
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { detail: string }).detail.replace(UUID, 'ID')).toBe(
        problem.detail.replace(UUID, 'ID'),
      );
    }
    const bobsList = (await (await bob.call('GET', '/v1/tasks')).json()) as { tasks: { taskId: string }[] };
    expect(bobsList.tasks).toEqual([]);

    // Control: alice sees it, and bob's cancel changed nothing.
    const mine = await alice.call('GET', `/v1/tasks/${id}`);
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { status: string }).status).toBe('queued');
    const alicesList = (await (await alice.call('GET', '/v1/tasks')).json()) as { tasks: { taskId: string }[] };
    expect(alicesList.tasks.map((t) => t.taskId)).toEqual([id]);
    expect((await alice.call('GET', `/v1/tasks/${id}/events`)).status).toBe(200);
  });

  it('has idempotency keys of its own, and a conflict names no task', async () => {
    const hh = await api();
    const alice = client(hh, 'alice');
    const bob = client(hh, 'bob');
    const a = await alice.submit('alice goal', 'shared-key');
    expect(a.status).toBe(202);
    // Bob's first use of the same key is his own new task, not a conflict with (or replay of) alice's.
    const b = await bob.submit('bob goal', 'shared-key');
    expect(b.status).toBe(202);
    expect(b.body.taskId).not.toBe(a.body.taskId);
    // Each replay returns the replaying tenant's own task.
    expect((await bob.submit('bob goal', 'shared-key')).body.taskId).toBe(b.body.taskId);
    expect((await alice.submit('alice goal', 'shared-key')).body.taskId).toBe(a.body.taskId);

    const conflict = await alice.call('POST', '/v1/tasks', { goal: 'another goal', idempotencyKey: 'shared-key' });
    expect(conflict.status).toBe(409);
    const text = await conflict.text();
    expect(text).toContain('FLOTILLA_IDEMPOTENCY_CONFLICT');
    expect(text).not.toMatch(UUID);
  });

  it('has a rate limit of its own: one tenant over its budget does not 429 another', async () => {
    const hh = await api({ rateLimit: { max: 3, timeWindowMs: 60_000 } });
    const alice = client(hh, 'alice');
    const bob = client(hh, 'bob');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await alice.call('GET', '/v1/tasks')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await bob.call('GET', '/v1/tasks')).status).toBe(200);
    expect((await alice.call('GET', '/v1/tasks')).status).toBe(429);
  });

  it("puts the tenant on the task and in every subtask's envelope", async () => {
    const hh = await api({ autorun: true });
    const seen: SubtaskEnvelope[] = [];
    const role = await startRole(hh, {
      role: 'researcher',
      handler: async (_input, { envelope }) => {
        seen.push(envelope);
        return { stopReason: 'finish', output: { answer: 'ok' } };
      },
    });
    try {
      const { body } = await client(hh, 'alice').submit('find one thing');
      const record = await hh.orchestrator.store.get(body.taskId);
      expect(record?.owner).toBe('alice');
      await waitFor(() => seen.length > 0, { what: 'a subtask to run' });
      expect(seen.every((e) => e.tenant === 'alice' && e.taskId === body.taskId)).toBe(true);
    } finally {
      await role.close();
    }
  });
});

describe('open tasks per tenant', () => {
  it('refuses a tenant over its cap with 429, leaves other tenants and replays alone, and frees a place when a task ends', async () => {
    // No plan workers: submitted tasks stay queued, so each counts as open until cancelled.
    const hh = await api({ maxOpen: 2 });
    const alice = client(hh, 'alice');
    const first = await alice.submit('one', 'key-one');
    expect(first.status).toBe(202);
    expect((await alice.submit('two')).status).toBe(202);

    const over = await alice.call('POST', '/v1/tasks', { goal: 'three' });
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('10');
    const problem = (await over.json()) as { code: string; detail: string };
    expect(problem.code).toBe('FLOTILLA_TOO_MANY_OPEN_TASKS');
    expect(problem.detail).toMatch(/2 queued or running tasks, its limit is 2/);

    // Another tenant has its own cap; a replay of a live key is no new task, so it is answered.
    expect((await client(hh, 'bob').submit('bob one')).status).toBe(202);
    expect((await alice.submit('one', 'key-one')).status).toBe(200);

    // A task that ends frees its place.
    expect((await alice.call('POST', `/v1/tasks/${first.body.taskId}/cancel`)).status).toBe(202);
    expect((await alice.submit('three')).status).toBe(202);
    expect((await alice.submit('four')).status).toBe(429);
  });
});

describe('scopes', () => {
  it("keeps the operator's endpoints for admin keys and the task endpoints for task keys", async () => {
    const hh = await api();
    const alice = client(hh, 'alice');
    const ops = client(hh, 'ops');
    const forbidden = await alice.call('GET', '/v1/roles');
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { code: string }).code).toBe('FLOTILLA_FORBIDDEN');
    expect((await ops.call('GET', '/v1/roles')).status).toBe(200);
    // An operator's key is not a tenant: it neither submits nor lists tasks.
    expect((await ops.call('POST', '/v1/tasks', { goal: 'x' })).status).toBe(403);
    expect((await ops.call('GET', '/v1/tasks')).status).toBe(403);
    // And a key nobody issued is no client at all.
    const unknown = await fetch(`${hh.url}/v1/roles`, { headers: { authorization: 'Bearer flk_not-a-key' } });
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });
});
