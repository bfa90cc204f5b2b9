// The approvals commands as an operator runs them: the built CLI as a real process, in a
// pseudo-terminal where the test reads the screen, against a real local mesh (the orchestrator and
// a researcher on real Redis and Chroma, the offline model) whose researcher must ask before each
// http.get (TOOLS_REQUIRE_APPROVAL). Each task fetches a page on a local site, so each parks one
// approval; the site counts what reached it. Build first (pnpm build). The admin-key refusal is in
// operator-cli.int.test.ts, beside the other operator commands'.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskView } from '@flotilla/contracts';
import { waitFor } from '@flotilla/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Approval } from './commands/approvals.js';
import { type Mesh, startMesh } from './mesh.js';
import { COLOUR, cliRunner, STACK_TRACE, screen } from './terminal.test.helpers.js';

let cwd: string;
const cli = cliRunner(() => cwd);
afterEach(async () => {
  await cli.stop();
});

describe('flotilla approvals, approve and deny against a mesh whose http.get needs approval', () => {
  let mesh: Mesh;
  let env: Record<string, string>;
  const hits: string[] = [];
  const site = createServer((req, res) => {
    hits.push(new URL(req.url ?? '/', 'http://x').pathname);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('the page');
  });
  let base: string;

  const api = async <T>(path: string, init?: RequestInit) =>
    (await (await fetch(`${mesh.url}${path}`, init)).json()) as T;
  /** Submits a task that fetches `page` and waits until its approval is pending; returns both ids. */
  const parkedTask = async (page: string) => {
    const { taskId } = await api<{ taskId: string }>('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ goal: `fetch ${base}${page}` }),
    });
    const approval = await waitFor(
      async () =>
        (await api<{ approvals: Approval[] }>('/v1/admin/approvals?status=pending')).approvals.find(
          (a) => a.taskId === taskId,
        ),
      { what: `the approval of ${page}`, timeoutMs: 30_000 },
    );
    return { taskId, approval };
  };
  const ended = (taskId: string) =>
    waitFor(
      async () => {
        const view = await api<TaskView>(`/v1/tasks/${taskId}`);
        return ['completed', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
      },
      { what: `task ${taskId} to end`, timeoutMs: 30_000 },
    );

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'flotilla-cli-approvals-'));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    mesh = await startMesh({
      only: ['researcher'],
      sandbox: false,
      env: { SHUTDOWN_GRACE_MS: '3000' },
      roleEnv: { researcher: { HTTP_ALLOWLIST: new URL(base).host, TOOLS_REQUIRE_APPROVAL: 'http.get' } },
    });
    env = { FLOTILLA_URL: mesh.url };
  }, 120_000);

  afterAll(async () => {
    await mesh?.stop();
    site.closeAllConnections();
    await new Promise<void>((resolve) => site.close(() => resolve()));
    rmSync(cwd, { recursive: true, force: true });
  }, 120_000);

  it('approvals lists the waiting call, in colour; approve lets it run once; a second decision is refused', async () => {
    const { taskId, approval } = await parkedTask('/approve-me');
    expect(hits).not.toContain('/approve-me');

    const shown = await cli.exec(['approvals'], { tty: true, env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(COLOUR);
    const rows = screen(shown.stdout);
    expect(rows[0]).toMatch(/^ID\s+TOOL\s+TASK\/SUBTASK\s+DEADLINE\s+SUMMARY/);
    const row = rows.find((l) => l.startsWith(approval.id));
    expect(row).toMatch(new RegExp(`^${approval.id}\\s+http\\.get\\s+${taskId.slice(0, 8)}/s1\\s+in \\d+m \\d+s`));
    expect(row).toContain('/approve-me');
    const page = JSON.parse((await cli.exec(['approvals', '--json'], { env })).stdout) as { approvals: Approval[] };
    expect(page.approvals.find((a) => a.id === approval.id)).toMatchObject({ status: 'pending', tool: 'http.get' });

    const approved = await cli.exec(['approve', approval.id, '--reason', 'a page we own'], { tty: true, env });
    expect(approved.code).toBe(0);
    expect(screen(approved.stdout).join('\n')).toContain(
      `${approval.id} approved: http.get for task ${taskId} subtask s1`,
    );
    const done = await ended(taskId);
    expect(done.status).toBe('completed');
    expect(hits.filter((h) => h === '/approve-me')).toHaveLength(1);

    const late = await cli.exec(['deny', approval.id, '--reason', 'too late'], { env });
    expect(late.code).toBe(1);
    expect(late.stderr).toContain(`cannot deny ${approval.id}:`);
    expect(late.stderr).toContain('already approved');
    expect(late.stderr).not.toMatch(STACK_TRACE);
    const decided = await cli.exec(['approvals', '--status', 'approved'], { env });
    expect(decided.stdout).toMatch(new RegExp(`^${approval.id}\\s+http\\.get`, 'm'));
  });

  it('deny --json prints the decided approval, the call never runs, and the task goes on without it', async () => {
    const { taskId, approval } = await parkedTask('/deny-me');
    const denied = await cli.exec(['deny', approval.id, '--reason', 'not during the freeze', '--json'], { env });
    expect(denied.code).toBe(0);
    expect(JSON.parse(denied.stdout)).toMatchObject({
      id: approval.id,
      status: 'denied',
      reason: 'not during the freeze',
    });
    const done = await ended(taskId);
    expect(['completed', 'failed']).toContain(done.status);
    expect(hits).not.toContain('/deny-me');

    const missing = await cli.exec(['approve', 'apr-000000000000000000000000', '--reason', 'x'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot approve apr-000000000000000000000000');
  });

  it('usage mistakes exit 2 and decide nothing: no --reason, a blank one, no id, an unknown --status', async () => {
    const { approval } = await parkedTask('/usage');
    for (const args of [
      ['approve', approval.id],
      ['deny', approval.id, '--reason', '   '],
      ['approve', '--reason', 'ok'],
      ['approvals', '--status', 'maybe'],
    ]) {
      const out = await cli.exec(args, { env });
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr).toContain('flotilla --help');
    }
    expect((await cli.exec(['approve', approval.id], { env })).stderr).toContain('approve needs --reason');
    expect((await api<Approval>(`/v1/admin/approvals/${approval.id}`)).status).toBe('pending');
    // Let it go, so the mesh stops with nothing parked.
    expect((await cli.exec(['deny', approval.id, '--reason', 'end of test'], { env })).code).toBe(0);
  });
});
