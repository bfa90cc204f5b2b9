// The approvals panel as an operator uses it: the real dashboard app listening on loopback (real
// Redis for its board), a real headless Chromium that logs in with an admin key, reads the table
// and clicks Approve / Deny, and a screenshot of what it showed.
//
// STAND-IN: the orchestrator's approvals API is built on another branch (`approvals`) and is not in
// this one; @flotilla/test-utils' startApprovalsStandIn implements exactly its contract from an
// in-memory list. Once the branches are merged, this test should point the dashboard at the real
// orchestrator instead.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisKeys } from '@flotilla/contracts';
import { createLogger } from '@flotilla/runtime';
import { ApiKeyRing, formatApiKeyLine, generateApiKey, parseApiKeys } from '@flotilla/runtime/auth';
import {
  type ApprovalsStandIn,
  freePort,
  standInApproval,
  startApprovalsStandIn,
  testServices,
  uniquePrefix,
} from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApprovalsClient } from './approvals-client.js';
import { buildDashboard, type Dashboard } from './board.js';
import { type Browser, chromiumMissing, startBrowser } from './browser.test.helpers.js';

// The people's keys (the keys file the dashboard checks) and the dashboard's own key for the API.
const OPS_KEY = generateApiKey();
const TENANT_KEY = generateApiKey();
const DASHBOARD_KEY = generateApiKey();
const keys = new ApiKeyRing(
  parseApiKeys([formatApiKeyLine('ops', 'admin', OPS_KEY), formatApiKeyLine('alice', 'tasks', TENANT_KEY)].join('\n')),
);
const log = createLogger({ service: 'dashboard-test', level: 'silent' });
const basic = (key: string) => `Basic ${Buffer.from(`ops:${key}`).toString('base64')}`;
/** Where the screenshots go, to be looked at (the test checks they are PNGs). */
const SHOTS = process.env.DASHBOARD_SCREENSHOT_DIR ?? join(tmpdir(), 'flotilla-dashboard-shots');

describe('the approvals panel', () => {
  let redis: Redis;
  let prefix: string;
  let api: ApprovalsStandIn;
  let dashboard: Dashboard | undefined;

  beforeAll(async () => {
    api = await startApprovalsStandIn({
      [DASHBOARD_KEY]: { name: 'dashboard', scope: 'admin' },
      [TENANT_KEY]: { name: 'alice', scope: 'tasks' },
    });
  });

  afterAll(async () => {
    await api?.close();
  });

  beforeEach(async () => {
    redis = new Redis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
    prefix = uniquePrefix('dashboard-approvals');
    await redis.sadd(redisKeys(prefix).roles, 'coder');
    api.approvals.splice(
      0,
      Infinity,
      standInApproval('apr-1'),
      standInApproval('apr-2', {
        tool: 'http.post',
        role: 'researcher',
        subtaskId: 's2',
        summary: 'POST https://hooks.example.test/deploy <script>alert(1)</script>',
      }),
    );
    api.requests.length = 0;
  });

  afterEach(async () => {
    await dashboard?.app.close();
    await dashboard?.close();
    dashboard = undefined;
    const left = await redis.keys(`${prefix}:*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
  });

  const build = async (approvals?: ApprovalsClient) => {
    dashboard = await buildDashboard({ connection: redis, prefix, keys, log, approvals });
    await dashboard.refresh();
    return dashboard;
  };

  // A real browser on a shared, busy machine: page loads get more time than the default.
  describe('in a browser', { timeout: 120_000 }, () => {
    let browser: Browser;
    let base: string;

    beforeAll(async () => {
      const missing = chromiumMissing();
      if (missing) throw new Error(missing);
      mkdirSync(SHOTS, { recursive: true });
      browser = await startBrowser({ authorization: basic(OPS_KEY) });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    beforeEach(async () => {
      const d = await build(new ApprovalsClient({ url: api.url, key: DASHBOARD_KEY }));
      const port = await freePort();
      await d.app.listen({ port, host: '127.0.0.1' });
      base = `http://127.0.0.1:${port}`;
    });

    const rows = () =>
      browser.page.evaluate<{ id: string; cells: string[] }[]>(
        `[...document.querySelectorAll('tbody tr')].map((tr) => ({ id: tr.id, cells: [...tr.cells].map((td) => td.innerText.replace(/\\s+/g, ' ').trim()) }))`,
      );
    const flash = () => browser.page.evaluate<string | null>(`document.querySelector('.flash')?.innerText ?? null`);
    const decide = (id: string, decision: 'approve' | 'deny', reason: string) =>
      browser.page.navigation(() =>
        browser.page.evaluate(`(() => {
          const row = document.getElementById('approval-${id}');
          row.querySelector('input[name=reason]').value = ${JSON.stringify(reason)};
          row.querySelector('button[value=${decision}]').click();
        })()`),
      );

    it('lists the pending approvals: tool, summary, task, deadline, with Approve and Deny', async () => {
      await browser.page.goto(`${base}/approvals`);
      const shown = await rows();
      expect(shown.map((r) => r.id)).toEqual(['approval-apr-1', 'approval-apr-2']);
      const [first, second] = shown;
      expect(first?.cells[0]).toBe('repo.write coder');
      expect(first?.cells[1]).toBe('write src/index.ts (120 bytes)');
      expect(first?.cells[2]).toBe('7d0c6a5e-0000-4000-8000-000000000001 subtask s1 · tenant me');
      expect(first?.cells[3]).toMatch(/^in 4m \d+s \d\d:\d\d:\d\d UTC$/);
      expect(first?.cells[4]).toBe('Approve Deny');
      // The summary is the tool's arguments: shown as text, never run as markup.
      expect(second?.cells[1]).toContain('<script>alert(1)</script>');
      expect(await browser.page.evaluate('document.querySelectorAll("main script").length')).toBe(0);
      const png = await browser.page.screenshot(join(SHOTS, 'approvals-pending.png'));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      // The dashboard asked with its own key.
      expect(api.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/admin/approvals', by: 'dashboard' });
    });

    it('Approve decides it through the API with the reason and who clicked; the row goes', async () => {
      await browser.page.goto(`${base}/approvals`);
      await decide('apr-1', 'approve', 'reviewed the diff');
      expect(await flash()).toBe('apr-1 approved: repo.write for task 7d0c6a5e-0000-4000-8000-000000000001');
      expect(api.approvals.find((a) => a.id === 'apr-1')).toMatchObject({
        status: 'approved',
        decidedBy: 'dashboard',
        reason: 'reviewed the diff (dashboard, by ops)',
      });
      expect((await rows()).map((r) => r.id)).toEqual(['approval-apr-2']);
      await browser.page.screenshot(join(SHOTS, 'approvals-after-approve.png'));
    });

    it('Deny on one another operator decided meanwhile: the page says who decided what (409)', async () => {
      await browser.page.goto(`${base}/approvals`);
      // Decided behind the page's back, as a second operator with the CLI would.
      Object.assign(api.approvals.find((a) => a.id === 'apr-2') ?? {}, {
        status: 'approved',
        decidedBy: 'carol',
        decidedAt: '2026-01-01T10:00:00.000Z',
      });
      await decide('apr-2', 'deny', 'not during the freeze');
      expect(await flash()).toBe('apr-2: approval apr-2 was already approved by carol at 2026-01-01T10:00:00.000Z');
      expect(api.approvals.find((a) => a.id === 'apr-2')?.status).toBe('approved');
      await browser.page.screenshot(join(SHOTS, 'approvals-conflict.png'));
    });

    it('a reason is required: the browser does not send the form without one', async () => {
      await browser.page.goto(`${base}/approvals`);
      const valid = await browser.page.evaluate<boolean>(
        `document.querySelector('#approval-apr-1 form').checkValidity()`,
      );
      expect(valid).toBe(false);
      expect(api.requests.filter((r) => r.method === 'POST')).toEqual([]);
    });
  });

  it('refuses the page without an admin key, and a tenant key', async () => {
    const d = await build(new ApprovalsClient({ url: api.url, key: DASHBOARD_KEY }));
    expect((await d.app.inject({ method: 'GET', url: '/approvals' })).statusCode).toBe(401);
    const tenant = await d.app.inject({
      method: 'GET',
      url: '/approvals',
      headers: { authorization: basic(TENANT_KEY) },
    });
    expect(tenant.statusCode).toBe(403);
    const post = await d.app.inject({
      method: 'POST',
      url: '/approvals/apr-1/decision',
      headers: { authorization: basic(TENANT_KEY), 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'decision=approve&reason=ok',
    });
    expect(post.statusCode).toBe(403);
    expect(api.requests).toEqual([]);
    // Control: an admin key opens it, and the board links to it.
    const ops = { authorization: basic(OPS_KEY) };
    expect((await d.app.inject({ method: 'GET', url: '/approvals', headers: ops })).statusCode).toBe(200);
    expect((await d.app.inject({ method: 'GET', url: '/', headers: ops })).body).toContain('"/approvals"');
  });

  it('refuses a form another site posts (the browser would send the Basic credentials with it)', async () => {
    const d = await build(new ApprovalsClient({ url: api.url, key: DASHBOARD_KEY }));
    const form = { authorization: basic(OPS_KEY), 'content-type': 'application/x-www-form-urlencoded' };
    for (const headers of [
      { ...form, 'sec-fetch-site': 'cross-site' },
      { ...form, origin: 'https://evil.example' },
    ]) {
      const res = await d.app.inject({
        method: 'POST',
        url: '/approvals/apr-1/decision',
        headers,
        payload: 'decision=approve&reason=ok',
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('FLOTILLA_DASHBOARD_CROSS_SITE');
    }
    expect(api.approvals.find((a) => a.id === 'apr-1')?.status).toBe('pending');
    // Control: the same post from the page's own origin goes through.
    const ok = await d.app.inject({
      method: 'POST',
      url: '/approvals/apr-1/decision',
      headers: { ...form, 'sec-fetch-site': 'same-origin', origin: 'http://dash.test:8081', host: 'dash.test:8081' },
      payload: 'decision=approve&reason=ok',
    });
    expect(ok.statusCode).toBe(303);
    expect(api.approvals.find((a) => a.id === 'apr-1')?.status).toBe('approved');
  });

  it('says how to connect it when not configured, and what is wrong when the API is away or refuses the key', async () => {
    const headers = { authorization: basic(OPS_KEY) };
    let d = await build();
    expect((await d.app.inject({ method: 'GET', url: '/approvals', headers })).body).toContain(
      'set ORCHESTRATOR_URL and DASHBOARD_API_KEY_FILE',
    );
    await d.app.close();
    await d.close();

    const away = `http://127.0.0.1:${await freePort()}`;
    d = await build(new ApprovalsClient({ url: away, key: DASHBOARD_KEY }));
    const down = await d.app.inject({ method: 'GET', url: '/approvals', headers });
    expect(down.statusCode).toBe(200);
    expect(down.body).toContain(`Cannot list approvals: the orchestrator at ${away} did not answer (ECONNREFUSED)`);
    await d.app.close();
    await d.close();

    d = await build(new ApprovalsClient({ url: api.url, key: TENANT_KEY }));
    const refused = await d.app.inject({ method: 'GET', url: '/approvals', headers });
    expect(refused.body).toContain('DASHBOARD_API_KEY_FILE must hold an admin key');
    expect(refused.body).not.toContain(TENANT_KEY);
  });
});
