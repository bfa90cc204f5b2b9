// Needs a real Redis: the board reads the roles registry and BullMQ's own keys, which only a real
// Redis (and real BullMQ queues) produce.
import { queueNames, redisKeys } from '@flotilla/contracts';
import { createLogger } from '@flotilla/runtime';
import { ApiKeyRing, formatApiKeyLine, generateApiKey, parseApiKeys } from '@flotilla/runtime/auth';
import { testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildDashboard, type Dashboard } from './board.js';

// The orchestrator's keys file, as `pnpm keys add` writes it: an operator's key and a tenant's.
const TOKEN = generateApiKey();
const TENANT_KEY = generateApiKey();
const keys = new ApiKeyRing(
  parseApiKeys([formatApiKeyLine('ops', 'admin', TOKEN), formatApiKeyLine('alice', 'tasks', TENANT_KEY)].join('\n')),
);
const log = createLogger({ service: 'dashboard-test', level: 'silent' });
const basic = (password: string) => `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;

type QueuesBody = { queues: { name: string; readOnlyMode: boolean; counts: Record<string, number> }[] };

describe('the dashboard', () => {
  let redis: Redis;
  let prefix: string;
  let dashboard: Dashboard | undefined;
  const producers: Queue[] = [];

  beforeEach(async () => {
    redis = new Redis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
    prefix = uniquePrefix('dashboard');
    await redis.sadd(redisKeys(prefix).roles, 'researcher');
  });

  afterEach(async () => {
    await dashboard?.app.close();
    await dashboard?.close();
    dashboard = undefined;
    await Promise.all(producers.splice(0).map((q) => q.obliterate({ force: true }).then(() => q.close())));
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  const build = async (opts: { basePath?: string; readOnly?: boolean } = {}) => {
    dashboard = await buildDashboard({ connection: redis, prefix, keys, log, ...opts });
    await dashboard.refresh();
    return dashboard;
  };

  const listQueues = async (d: Dashboard, authorization: string, path = '/api/queues') => {
    const res = await d.app.inject({ method: 'GET', url: path, headers: { authorization } });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<QueuesBody>().queues;
  };

  it('refuses every board route without an admin key, and asks a browser for Basic auth', async () => {
    const d = await build();
    for (const url of ['/', '/api/queues', '/static/images/logo.svg']) {
      const res = await d.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['www-authenticate'], url).toMatch(/^Basic realm=/);
      expect(res.json().code).toBe('FLOTILLA_DASHBOARD_UNAUTHORIZED');
    }
    for (const authorization of ['Bearer wrong-token-0123456789', basic('wrong'), `Bearer ${TOKEN}x`]) {
      const res = await d.app.inject({ method: 'GET', url: '/api/queues', headers: { authorization } });
      expect(res.statusCode, authorization).toBe(401);
    }
  });

  it("refuses a tenant's key with 403: every tenant's jobs are on the board", async () => {
    const d = await build();
    for (const authorization of [`Bearer ${TENANT_KEY}`, basic(TENANT_KEY)]) {
      const res = await d.app.inject({ method: 'GET', url: '/api/queues', headers: { authorization } });
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('FLOTILLA_DASHBOARD_FORBIDDEN');
    }
    // Control: the operator's key from the same file opens it.
    expect((await listQueues(d, `Bearer ${TOKEN}`)).length).toBeGreaterThan(0);
  });

  it("lists every role's queue and the orchestrator's three, with live counts, for a bearer or Basic client", async () => {
    const researcher = new Queue(queueNames.role('researcher'), { connection: redis, prefix });
    producers.push(researcher);
    await researcher.add('subtask', { question: 'q' });
    await researcher.add('subtask', { question: 'q2' }, { delay: 60_000 });
    const d = await build();

    const queues = await listQueues(d, `Bearer ${TOKEN}`);
    expect(queues.map((q) => q.name).sort()).toEqual(
      [queueNames.role('researcher'), queueNames.plan, queueNames.aggregate, queueNames.sweep].sort(),
    );
    const shown = queues.find((q) => q.name === queueNames.role('researcher'));
    expect(shown?.counts).toMatchObject({ waiting: 1, delayed: 1 });
    expect(shown?.readOnlyMode).toBe(true);
    expect((await listQueues(d, basic(TOKEN))).length).toBe(4);

    const page = await d.app.inject({ method: 'GET', url: '/', headers: { authorization: basic(TOKEN) } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
  });

  it('picks up a role that registers after it started', async () => {
    const d = await build();
    expect((await listQueues(d, `Bearer ${TOKEN}`)).map((q) => q.name)).not.toContain(queueNames.role('coder'));
    await redis.sadd(redisKeys(prefix).roles, 'coder');
    expect(await d.refresh()).toContain(queueNames.role('coder'));
    expect((await listQueues(d, `Bearer ${TOKEN}`)).map((q) => q.name)).toContain(queueNames.role('coder'));
  });

  it('refuses to retry failed jobs when read-only, and retries them when not', async () => {
    const name = queueNames.role('researcher');
    const researcher = new Queue(name, { connection: redis, prefix });
    producers.push(researcher);
    await researcher.add('subtask', { question: 'q' });
    // A real worker fails the job, as a crashing handler would.
    const workerConnection = new Redis(testServices().redisUrl, { maxRetriesPerRequest: null });
    const worker = new Worker(
      name,
      async () => {
        throw new Error('boom');
      },
      { connection: workerConnection, prefix },
    );
    try {
      await waitFor(async () => (await researcher.getJobCounts('failed')).failed === 1, {
        what: 'the job to fail',
        timeoutMs: 10_000,
      });
    } finally {
      await worker.close();
      workerConnection.disconnect();
    }
    const url = `/api/queues/${encodeURIComponent(name)}/retry/failed`;
    const headers = { authorization: `Bearer ${TOKEN}` };

    const ro = await build();
    const refused = await ro.app.inject({ method: 'PUT', url, headers });
    expect(refused.statusCode).toBe(405);
    expect(await researcher.getJobCounts('failed', 'waiting')).toEqual({ failed: 1, waiting: 0 });
    await ro.app.close();
    await ro.close();

    const rw = await build({ readOnly: false });
    const retried = await rw.app.inject({ method: 'PUT', url, headers });
    expect(retried.statusCode, retried.body).toBe(200);
    expect(await researcher.getJobCounts('failed', 'waiting')).toEqual({ failed: 0, waiting: 1 });
  });

  it('serves under a base path', async () => {
    const d = await build({ basePath: '/queues/' });
    expect((await listQueues(d, `Bearer ${TOKEN}`, '/queues/api/queues')).length).toBe(4);
    expect((await d.app.inject({ method: 'GET', url: '/queues/api/queues' })).statusCode).toBe(401);
  });
});
