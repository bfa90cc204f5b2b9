// Approvals end to end: real Redis, real HTTP, the orchestrator's flow and in-process runWorker
// replicas. A tool that needs approval parks its subtask as a delayed BullMQ job; the operator's
// API decides (the first decision wins), promotes the job and a replica resumes it. Two operators
// racing and a cancel while parked are about Redis scripts and BullMQ states a mock would not have.
import { type Approval, redisKeys, TaskEvent } from '@flotilla/contracts';
import { defineTool, type ToolOutcome } from '@flotilla/runtime';
import { readTaskEvents } from '@flotilla/runtime/worker';
import { waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Harness, startHarness, startRole, taskEnded, testKeys } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';
import type { Problem } from './schemas.js';

const keys = testKeys({ alice: 'tasks', ops: 'admin', oncall: 'admin' });
type Client = 'alice' | 'ops' | 'oncall';
const SECRET = 'sk-live-abcdefghijklmnopqrstuvwx';

let h: Harness | undefined;
let queue: Queue | undefined;
afterEach(async () => {
  await queue?.close();
  queue = undefined;
  await h?.close();
  h = undefined;
});

/** A decision's answer: an Approval (200) or a problem (409), told apart by the HTTP status. */
type Decided = Omit<Approval, 'status'> & Omit<Problem, 'status'> & { status: string | number };

interface Page {
  approvals: Approval[];
  total: number;
  nextOffset: number | null;
}

function client(hh: Harness, who: Client) {
  return async <T = Problem>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${hh.url}${path}`, {
      method,
      headers: { ...keys.auth(who), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
}

/** A harness with a researcher whose one write tool needs approval; counts the writes and keeps each outcome. */
async function setup() {
  const hh = await startHarness({ llm: offlineLlm(), listen: true, app: { keys: keys.ring } });
  h = hh;
  queue = new Queue('role.researcher', { connection: hh.connection, prefix: hh.prefix });
  const seen = { writes: 0, outcomes: [] as ToolOutcome[] };
  await startRole(hh, {
    role: 'researcher',
    tools: [
      defineTool({
        name: 'ledger.write',
        description: 'books an amount',
        input: z.object({ amount: z.number(), token: z.string() }),
        sideEffects: 'write',
        requiresApproval: true,
        run: async ({ amount }) => {
          seen.writes++;
          return { booked: amount };
        },
      }),
    ],
    handler: async (_input, ctx) => {
      const outcome = await ctx.tools.call('ledger.write', { amount: 7, token: SECRET });
      seen.outcomes.push(outcome);
      // As runToolLoop does: a run its budget stopped (a cancelled task) ends with that stop reason.
      if (ctx.budget.stopReason) return { stopReason: ctx.budget.stopReason };
      return { stopReason: 'finish', output: { answer: outcome.ok ? 'booked' : outcome.stopReason } };
    },
  });
  const submit = async (goal: string) => {
    const res = await client(hh, 'alice')<{ taskId: string }>('POST', '/v1/tasks', { goal });
    expect(res.status).toBe(202);
    return res.body.taskId;
  };
  /** Waits until the task's subtask waits for approval; returns the approval as the API lists it. */
  const pending = (taskId: string) =>
    waitFor(
      async () => {
        const page = await client(hh, 'ops')<Page>('GET', '/v1/admin/approvals?status=pending');
        return page.body.approvals.find((a) => a.taskId === taskId);
      },
      { what: `task ${taskId}'s approval` },
    );
  return {
    hh,
    seen,
    submit,
    pending,
    ops: client(hh, 'ops'),
    oncall: client(hh, 'oncall'),
    alice: client(hh, 'alice'),
  };
}

describe('approvals through the API', () => {
  it('lists a parked call (redacted), lets the first of two racing operators decide (the other gets 409), and resumes the subtask once', async () => {
    const { hh, seen, submit, pending, ops, oncall } = await setup();
    const taskId = await submit('book an amount');
    const approval = await pending(taskId);
    expect(approval).toMatchObject({
      status: 'pending',
      tool: 'ledger.write',
      role: 'researcher',
      owner: 'alice',
      approvers: 'admin',
      decidedAt: null,
      decidedBy: null,
      reason: null,
    });
    expect(approval.summary).toContain('"amount":7');
    expect(approval.summary).not.toContain(SECRET);
    expect(Date.parse(approval.deadline) - Date.parse(approval.requestedAt)).toBe(300_000);
    // Parked: the job is delayed, nothing runs, nothing was written.
    expect(await queue?.getJobCounts('active', 'delayed')).toEqual({ active: 0, delayed: 1 });
    expect(seen.writes).toBe(0);
    expect((await ops<Approval>('GET', `/v1/admin/approvals/${approval.id}`)).body).toEqual(approval);

    const path = `/v1/admin/approvals/${approval.id}/decision`;
    const [a, b] = await Promise.all([
      ops<Decided>('POST', path, { decision: 'approve', reason: 'change ticket 7' }),
      oncall<Decided>('POST', path, { decision: 'deny', reason: 'not during the freeze' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const [won, lost] = a.status === 200 ? [a, b] : [b, a];
    const winner = won === a ? 'ops' : 'oncall';
    expect(won.body).toMatchObject({ id: approval.id, decidedBy: winner });
    expect(lost.body.code).toBe('FLOTILLA_APPROVAL_DECIDED');
    expect(lost.body.detail).toContain(winner);
    expect(lost.body.detail).toContain(won.body.status);

    const view = await taskEnded(hh, taskId);
    expect(view.status).toBe('completed');
    const approved = won.body.status === 'approved';
    expect(seen.writes).toBe(approved ? 1 : 0);
    expect(seen.outcomes).toHaveLength(1);
    expect(seen.outcomes[0]).toMatchObject(approved ? { ok: true } : { ok: false, stopReason: 'approval_denied' });

    // Recorded: the event stream, and the operator actions stream names who and why.
    const events = (await readTaskEvents(hh.redis, hh.prefix, taskId)).map(({ event }) => TaskEvent.parse(event));
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['approval_requested', 'approval_decided', 'subtask_resumed']),
    );
    expect(events.find((e) => e.type === 'approval_decided')).toMatchObject({ by: winner, approvalId: approval.id });
    const actions = await hh.redis.xrange(redisKeys(hh.prefix).operatorActions, '-', '+');
    expect(actions.map(([, f]) => f)).toEqual([
      expect.arrayContaining(['approval', 'by', winner, 'approvalId', approval.id]),
    ]);

    // The list: no longer pending, found under its status and in the default listing.
    expect((await ops<Page>('GET', '/v1/admin/approvals?status=pending')).body.total).toBe(0);
    const byStatus = await ops<Page>('GET', `/v1/admin/approvals?status=${won.body.status}`);
    expect(byStatus.body).toMatchObject({ total: 1, nextOffset: null });
    expect((await ops<Page>('GET', '/v1/admin/approvals')).body.approvals.map((x) => x.id)).toEqual([approval.id]);
  });

  it('cancelling the task while a subtask waits cancels the approval, and the parked run ends as cancelled', async () => {
    const { hh, seen, submit, pending, ops, alice } = await setup();
    const taskId = await submit('book something');
    const approval = await pending(taskId);
    expect((await alice('POST', `/v1/tasks/${taskId}/cancel`)).status).toBe(202);
    expect((await taskEnded(hh, taskId)).status).toBe('cancelled');
    expect((await ops<Approval>('GET', `/v1/admin/approvals/${approval.id}`)).body).toMatchObject({
      status: 'cancelled',
      decidedBy: 'system',
    });
    // The parked job was promoted rather than removed: a replica resumed it, found the task
    // cancelled and finished the run as cancelled, so the subtask does not stay "active" forever.
    const job = await waitFor(
      async () => {
        const j = await queue?.getJob(`${taskId}.${approval.subtaskId}`);
        return (await j?.isCompleted()) ? j : undefined;
      },
      { what: 'the parked job to end' },
    );
    expect(job.returnvalue).toMatchObject({ ok: false, stopReason: 'cancelled' });
    const view = await waitFor(
      async () => {
        const v = await hh.orchestrator.store.view(taskId);
        return v?.subtasks[0]?.state === 'cancelled' ? v : undefined;
      },
      { what: 'the subtask cancelled in the view' },
    );
    expect(view.subtasks[0]).toMatchObject({ state: 'cancelled', stopReason: 'cancelled' });
    expect(await queue?.getJobCounts('active', 'delayed', 'waiting')).toEqual({ active: 0, delayed: 0, waiting: 0 });
    const late = await ops<Problem>('POST', `/v1/admin/approvals/${approval.id}/decision`, {
      decision: 'approve',
      reason: 'too late',
    });
    expect(late.status).toBe(409);
    expect(late.body.detail).toContain('cancelled');
    expect(seen.writes).toBe(0);
    expect(seen.outcomes).toMatchObject([{ ok: false, stopReason: 'cancelled' }]);
  });

  it('answers 404 for an unknown approval, 400 naming the field for a bad decision, 403 for a tasks key', async () => {
    const { ops, alice, submit, pending } = await setup();
    expect((await ops('GET', '/v1/admin/approvals/apr-000000000000000000000000')).status).toBe(404);
    const unknown = await ops('POST', '/v1/admin/approvals/apr-000000000000000000000000/decision', {
      decision: 'approve',
      reason: 'x',
    });
    expect(unknown.status).toBe(404);
    expect((await alice('GET', '/v1/admin/approvals')).status).toBe(403);
    expect((await ops('GET', '/v1/admin/approvals?status=maybe')).body.errors?.[0]?.field).toBe('query.status');

    const approval = await pending(await submit('book more'));
    const path = `/v1/admin/approvals/${approval.id}/decision`;
    const noReason = await ops('POST', path, { decision: 'approve' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.errors?.map((e) => e.field)).toEqual(['reason']);
    const badDecision = await ops('POST', path, { decision: 'maybe', reason: 'hmm' });
    expect(badDecision.status).toBe(400);
    expect(badDecision.body.errors?.map((e) => e.field)).toEqual(['decision']);
    expect(badDecision.body.detail).toContain('decision');
    // Neither touched it: still pending.
    expect((await ops<Approval>('GET', `/v1/admin/approvals/${approval.id}`)).body.status).toBe('pending');
  });
});
