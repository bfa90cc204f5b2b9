// The approvals commands as an operator runs them: the built CLI as a real process, in a
// pseudo-terminal where the test reads the screen, over real HTTP.
//
// STAND-IN: the approvals API (GET /v1/admin/approvals, POST /v1/admin/approvals/{id}/decision) is
// built on another branch (`approvals`, issue 13 §2) and is not in this branch's orchestrator.
// @flotilla/test-utils' startApprovalsStandIn implements exactly its contract from an in-memory list
// so the CLI can be tested now; once the branches are merged, this file should start the real
// orchestrator (and a worker whose tool requires approval) instead, and the stand-in goes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApprovalsStandIn, standInApproval as approval, startApprovalsStandIn } from '@flotilla/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Approval } from './commands/approvals.js';
import { COLOUR, cliRunner, STACK_TRACE, screen } from './terminal.test.helpers.js';

const ADMIN_KEY = 'flk_admin_admin_admin_admin_admin_admin_admin_a';
const TASKS_KEY = 'flk_tasks_tasks_tasks_tasks_tasks_tasks_tasks_t';
const TASK = '7d0c6a5e-0000-4000-8000-000000000001';

describe('flotilla approvals, approve and deny (against a stand-in for the approvals API)', () => {
  let cwd: string;
  const cli = cliRunner(() => cwd);
  let api: ApprovalsStandIn;
  let env: Record<string, string>;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'flotilla-cli-approvals-'));
    api = await startApprovalsStandIn({
      [ADMIN_KEY]: { name: 'ops', scope: 'admin' },
      [TASKS_KEY]: { name: 'me', scope: 'tasks' },
    });
    env = { FLOTILLA_URL: api.url, FLOTILLA_API_KEY: ADMIN_KEY };
  });

  beforeEach(() => {
    api.approvals.splice(
      0,
      Infinity,
      approval('apr-1'),
      approval('apr-2', { tool: 'http.post', subtaskId: 's2', summary: 'POST https://example.test/hook' }),
      approval('apr-0', {
        status: 'approved',
        decidedBy: 'alice',
        decidedAt: '2026-01-01T10:00:00.000Z',
        reason: 'looks fine',
      }),
    );
    api.requests.length = 0;
  });

  afterEach(async () => {
    await cli.stop();
  });

  afterAll(async () => {
    await api?.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('approvals: the pending ones, with tool, task, time left and summary, in colour; --json is the body', async () => {
    const shown = await cli.exec(['approvals'], { tty: true, env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(COLOUR);
    const rows = screen(shown.stdout);
    expect(rows[0]).toMatch(/^ID\s+TOOL\s+TASK\/SUBTASK\s+DEADLINE\s+SUMMARY/);
    expect(rows.find((l) => l.startsWith('apr-1'))).toMatch(
      /^apr-1\s+repo\.write\s+7d0c6a5e\/s1\s+in 4m \d+s\s+write src\/index\.ts \(120 bytes\)/,
    );
    expect(rows.find((l) => l.startsWith('apr-2'))).toContain('POST https://example.test/hook');
    // Pending only by default: the decided one is not listed.
    expect(rows.some((l) => l.startsWith('apr-0'))).toBe(false);
    expect(rows.join('\n')).toContain('flotilla approve|deny <ID> --reason');

    const json = await cli.exec(['approvals', '--json'], { tty: true, env });
    expect(json.stdout).not.toMatch(COLOUR);
    const page = JSON.parse(json.stdout);
    expect(page.total).toBe(2);
    expect(page.approvals.map((a: Approval) => a.id)).toEqual(['apr-1', 'apr-2']);

    const decided = await cli.exec(['approvals', '--status', 'approved'], { env });
    expect(decided.stdout).toMatch(/^apr-0\s+repo\.write\s+7d0c6a5e\/s1\s+alice 2026-01-01 10:00:00/m);
  });

  it('approve: decides it with the reason; a second decision gets "already decided" (409), exit 1', async () => {
    const approved = await cli.exec(['approve', 'apr-1', '--reason', 'reviewed the diff'], { tty: true, env });
    expect(approved.code).toBe(0);
    expect(screen(approved.stdout).join('\n')).toContain(`apr-1 approved: repo.write for task ${TASK} subtask s1`);
    expect(api.requests.at(-1)).toEqual({
      method: 'POST',
      path: '/v1/admin/approvals/apr-1/decision',
      body: { decision: 'approve', reason: 'reviewed the diff' },
      by: 'ops',
    });
    expect(api.approvals.find((a) => a.id === 'apr-1')).toMatchObject({ status: 'approved', decidedBy: 'ops' });

    const late = await cli.exec(['deny', 'apr-1', '--reason', 'too risky'], { env });
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('cannot deny apr-1: approval apr-1 was already approved by ops');
    expect(late.stderr).not.toMatch(STACK_TRACE);
    expect(api.approvals.find((a) => a.id === 'apr-1')?.status).toBe('approved');
  });

  it('deny --json prints the decided approval; an unknown id is a 404 said in words', async () => {
    const denied = await cli.exec(['deny', 'apr-2', '--reason', 'not during the freeze', '--json'], { env });
    expect(denied.code).toBe(0);
    expect(JSON.parse(denied.stdout)).toMatchObject({ id: 'apr-2', status: 'denied', reason: 'not during the freeze' });
    const missing = await cli.exec(['approve', 'apr-404', '--reason', 'x'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot approve apr-404: no approval apr-404');
  });

  it('usage mistakes exit 2 and send nothing: no --reason, a blank one, no id, an unknown --status', async () => {
    for (const args of [
      ['approve', 'apr-1'],
      ['deny', 'apr-1', '--reason', '   '],
      ['approve', '--reason', 'ok'],
      ['approvals', '--status', 'maybe'],
    ]) {
      const out = await cli.exec(args, { env });
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr).toContain('flotilla --help');
    }
    expect((await cli.exec(['approve', 'apr-1'], { env })).stderr).toContain('approve needs --reason');
    expect((await cli.exec(['approvals', '--status', 'maybe'], { env })).stderr).toContain(
      '--status must be one of pending, approved, denied, timed_out, cancelled',
    );
    expect(api.requests).toEqual([]);
    expect(api.approvals.find((a) => a.id === 'apr-1')?.status).toBe('pending');
  });

  it('a tasks key: says an admin key is needed; never prints the key', async () => {
    const refused = await cli.exec(['approve', 'apr-1', '--reason', 'ok'], {
      env: { FLOTILLA_URL: api.url, FLOTILLA_API_KEY: TASKS_KEY },
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('operator commands need an admin key (403');
    expect(refused.stderr).not.toContain(TASKS_KEY);
    expect(api.approvals.find((a) => a.id === 'apr-1')?.status).toBe('pending');
  });
});
