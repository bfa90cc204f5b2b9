// The approvals panel as an operator uses it: the real dashboard app listening on loopback (real
// Redis for its board), a real headless Chromium that logs in with an admin key, reads the table
// and clicks Approve / Deny, and a screenshot of what it showed. The approvals are real: an
// orchestrator and a researcher run as processes (the offline model, a real keys file), the
// researcher must ask before http.get and notes.write (TOOLS_REQUIRE_APPROVAL), and each test's
// tasks park calls that the page then decides. Build first (pnpm build).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisKeys } from '@flotilla/contracts';
import { createLogger } from '@flotilla/runtime';
import { ApiKeyRing, formatApiKeyLine, generateApiKey, parseApiKeys } from '@flotilla/runtime/auth';
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
import { type Approval, ApprovalsClient } from './approvals-client.js';
import { buildDashboard, type Dashboard } from './board.js';
import { type Browser, chromiumMissing, startBrowser } from './browser.test.helpers.js';

// The people's keys (the keys file the dashboard checks) and the dashboard's own key for the API.
const OPS_KEY = generateApiKey();
const TENANT_KEY = generateApiKey();
const DASHBOARD_KEY = generateApiKey();
/** A second operator's key on the orchestrator, deciding with the CLI behind the page's back. */
const CAROL_KEY = generateApiKey();
const keys = new ApiKeyRing(
  parseApiKeys([formatApiKeyLine('ops', 'admin', OPS_KEY), formatApiKeyLine('alice', 'tasks', TENANT_KEY)].join('\n')),
);
const log = createLogger({ service: 'dashboard-test', level: 'silent' });
const basic = (key: string) => `Basic ${Buffer.from(`ops:${key}`).toString('base64')}`;
/** Where the screenshots go, to be looked at (the test checks they are PNGs). */
const SHOTS = process.env.DASHBOARD_SCREENSHOT_DIR ?? join(tmpdir(), 'flotilla-dashboard-shots');
const packageDir = (name: string) => fileURLToPath(new URL(`../../${name}`, import.meta.url));

/**
 * The orchestrator (its keys: the dashboard's admin key and alice's tasks key) and one researcher
 * whose http.get and notes.write wait for a person, on a private queue prefix; a site they fetch.
 */
async function startServices() {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-dashboard-approvals-'));
  const keysFile = join(dir, 'api_keys');
  writeFileSync(
    keysFile,
    `${[
      formatApiKeyLine('dashboard', 'admin', DASHBOARD_KEY),
      formatApiKeyLine('carol', 'admin', CAROL_KEY),
      formatApiKeyLine('alice', 'tasks', TENANT_KEY),
    ].join('\n')}\n`,
  );
  const hits: string[] = [];
  const site = createServer((req, res) => {
    hits.push(new URL(req.url ?? '/', 'http://x').pathname);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('the page');
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const siteBase = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  const prefix = uniquePrefix('dashboard-approvals-api');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const common = {
    LLM_PROVIDER: 'offline',
    REDIS_URL: testServices().redisUrl,
    QUEUE_PREFIX: prefix,
    HEALTH_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
  };
  const node = (name: string, env: Record<string, string | undefined>): RunningProcess =>
    startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
      cwd: packageDir(name),
      env: { ...common, ...env },
    });
  const researcherPort = await freePort();
  const procs = [
    node('orchestrator', {
      API_KEYS_FILE: keysFile,
      AUTH: undefined,
      PORT: String(port),
      HEALTH_PORT: String(port),
      CHROMA_URL: undefined,
    }),
    node('researcher', {
      HEALTH_PORT: String(researcherPort),
      HTTP_ALLOWLIST: new URL(siteBase).host,
      CHROMA_URL: testServices().chromaUrl,
      MEMORY_COLLECTION_PREFIX: prefix.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 40),
      TOOLS_REQUIRE_APPROVAL: 'http.get,notes.write',
      SHUTDOWN_GRACE_MS: '3000',
    }),
  ];
  for (const readyz of [`${url}/readyz`, `http://127.0.0.1:${researcherPort}/readyz`]) {
    await waitFor(async () => (await fetch(readyz).catch(() => undefined))?.ok, { what: readyz, timeoutMs: 30_000 });
  }
  const call = async <T>(path: string, key: string, body?: unknown) =>
    (await (
      await fetch(`${url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    ).json()) as T;
  return {
    url,
    hits,
    siteBase,
    /** Alice's task for `goal`, once its first call waits for a person: the approval. */
    parked: async (goal: string) => {
      const { taskId } = await call<{ taskId: string }>('/v1/tasks', TENANT_KEY, { goal });
      return waitFor(
        async () =>
          (await call<{ approvals: Approval[] }>('/v1/admin/approvals?status=pending', DASHBOARD_KEY)).approvals.find(
            (a) => a.taskId === taskId,
          ),
        { what: `the approval of "${goal}"`, timeoutMs: 30_000 },
      );
    },
    approval: (id: string) => call<Approval>(`/v1/admin/approvals/${id}`, DASHBOARD_KEY),
    /** Decided as carol, another operator. */
    decide: (id: string, decision: 'approve' | 'deny', reason: string) =>
      call<Approval>(`/v1/admin/approvals/${id}/decision`, CAROL_KEY, { decision, reason }),
    pending: async () =>
      (await call<{ approvals: Approval[] }>('/v1/admin/approvals?status=pending', DASHBOARD_KEY)).approvals,
    stop: async () => {
      await stopAll(procs, 10_000);
      site.closeAllConnections();
      await new Promise<void>((resolve) => site.close(() => resolve()));
      const redis = new Redis(testServices().redisUrl);
      const left = await redis.keys(`${prefix}:*`);
      if (left.length) await redis.del(...left);
      redis.disconnect();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('the approvals panel', () => {
  let services: Awaited<ReturnType<typeof startServices>>;
  let redis: Redis;
  let prefix: string;
  let dashboard: Dashboard | undefined;
  const client = (key = DASHBOARD_KEY) => new ApprovalsClient({ url: services.url, key });

  beforeAll(async () => {
    services = await startServices();
  }, 60_000);

  afterAll(async () => {
    // Nothing left parked: deny what the tests left waiting, then stop.
    for (const a of (await services?.pending()) ?? []) await services.decide(a.id, 'deny', 'end of test');
    await services?.stop();
  }, 60_000);

  beforeEach(async () => {
    redis = new Redis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
    prefix = uniquePrefix('dashboard-approvals');
    await redis.sadd(redisKeys(prefix).roles, 'coder');
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
      const d = await build(client());
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

    it('lists the pending approvals: tool, summary, task, deadline, with Approve and Deny; markup stays text', async () => {
      const fetch = await services.parked(`fetch ${services.siteBase}/listed`);
      const note = await services.parked('remember this: <script>alert(1)</script> is not code to run');
      await browser.page.goto(`${base}/approvals`);
      const shown = await rows();
      const fetchRow = shown.find((r) => r.id === `approval-${fetch.id}`);
      expect(fetchRow?.cells[0]).toBe('http.get researcher');
      expect(fetchRow?.cells[1]).toContain(`${services.siteBase}/listed`);
      expect(fetchRow?.cells[2]).toBe(`${fetch.taskId} subtask s1 · tenant alice`);
      expect(fetchRow?.cells[3]).toMatch(/^in \d+m \d+s \d\d:\d\d:\d\d UTC$/);
      expect(fetchRow?.cells[4]).toBe('Approve Deny');
      // The summary is the tool's arguments: shown as text, never run as markup.
      const noteRow = shown.find((r) => r.id === `approval-${note.id}`);
      expect(noteRow?.cells[0]).toBe('notes.write researcher');
      expect(noteRow?.cells[1]).toContain('<script>alert(1)</script>');
      expect(await browser.page.evaluate('document.querySelectorAll("main script").length')).toBe(0);
      const png = await browser.page.screenshot(join(SHOTS, 'approvals-pending.png'));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
    });

    it('Approve decides it through the API with the reason and who clicked; the call runs; the row goes', async () => {
      const a = await services.parked(`fetch ${services.siteBase}/approved-page`);
      await browser.page.goto(`${base}/approvals`);
      await decide(a.id, 'approve', 'a page we own');
      expect(await flash()).toBe(`${a.id} approved: http.get for task ${a.taskId}`);
      expect(await services.approval(a.id)).toMatchObject({
        status: 'approved',
        decidedBy: 'dashboard',
        reason: 'a page we own (dashboard, by ops)',
      });
      expect((await rows()).map((r) => r.id)).not.toContain(`approval-${a.id}`);
      await waitFor(() => services.hits.includes('/approved-page'), { what: 'the approved call to run' });
      await browser.page.screenshot(join(SHOTS, 'approvals-after-approve.png'));
    });

    it('Deny on one another operator decided meanwhile: the page says who decided what (409)', async () => {
      const a = await services.parked(`fetch ${services.siteBase}/raced`);
      await browser.page.goto(`${base}/approvals`);
      // Decided behind the page's back, as a second operator with the CLI would.
      const decided = await services.decide(a.id, 'approve', 'carol had a look');
      await decide(a.id, 'deny', 'not during the freeze');
      expect(await flash()).toBe(
        `${a.id}: approval ${a.id} is already approved: carol decided at ${decided.decidedAt} (carol had a look)`,
      );
      expect((await services.approval(a.id)).status).toBe('approved');
      await browser.page.screenshot(join(SHOTS, 'approvals-conflict.png'));
    });

    it('a reason is required: the browser does not send the form without one', async () => {
      const a = await services.parked(`fetch ${services.siteBase}/no-reason`);
      await browser.page.goto(`${base}/approvals`);
      const valid = await browser.page.evaluate<boolean>(
        `document.querySelector('#approval-${a.id} form').checkValidity()`,
      );
      expect(valid).toBe(false);
      expect((await services.approval(a.id)).status).toBe('pending');
    });
  });

  it('refuses the page without an admin key, and a tenant key', async () => {
    const a = await services.parked(`fetch ${services.siteBase}/refused`);
    const d = await build(client());
    expect((await d.app.inject({ method: 'GET', url: '/approvals' })).statusCode).toBe(401);
    const tenant = await d.app.inject({
      method: 'GET',
      url: '/approvals',
      headers: { authorization: basic(TENANT_KEY) },
    });
    expect(tenant.statusCode).toBe(403);
    const post = await d.app.inject({
      method: 'POST',
      url: `/approvals/${a.id}/decision`,
      headers: { authorization: basic(TENANT_KEY), 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'decision=approve&reason=ok',
    });
    expect(post.statusCode).toBe(403);
    expect((await services.approval(a.id)).status).toBe('pending');
    // Control: an admin key opens it, and the board links to it.
    const ops = { authorization: basic(OPS_KEY) };
    expect((await d.app.inject({ method: 'GET', url: '/approvals', headers: ops })).statusCode).toBe(200);
    expect((await d.app.inject({ method: 'GET', url: '/', headers: ops })).body).toContain('"/approvals"');
  });

  it('refuses a form another site posts (the browser would send the Basic credentials with it)', async () => {
    const a = await services.parked(`fetch ${services.siteBase}/cross-site`);
    const d = await build(client());
    const form = { authorization: basic(OPS_KEY), 'content-type': 'application/x-www-form-urlencoded' };
    for (const headers of [
      { ...form, 'sec-fetch-site': 'cross-site' },
      { ...form, origin: 'https://evil.example' },
    ]) {
      const res = await d.app.inject({
        method: 'POST',
        url: `/approvals/${a.id}/decision`,
        headers,
        payload: 'decision=approve&reason=ok',
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('FLOTILLA_DASHBOARD_CROSS_SITE');
    }
    expect((await services.approval(a.id)).status).toBe('pending');
    // Control: the same post from the page's own origin goes through.
    const ok = await d.app.inject({
      method: 'POST',
      url: `/approvals/${a.id}/decision`,
      headers: { ...form, 'sec-fetch-site': 'same-origin', origin: 'http://dash.test:8081', host: 'dash.test:8081' },
      payload: 'decision=approve&reason=ok',
    });
    expect(ok.statusCode).toBe(303);
    expect((await services.approval(a.id)).status).toBe('approved');
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

    d = await build(client(TENANT_KEY));
    const refused = await d.app.inject({ method: 'GET', url: '/approvals', headers });
    expect(refused.body).toContain('DASHBOARD_API_KEY_FILE must hold an admin key');
    expect(refused.body).not.toContain(TENANT_KEY);
  });
});
