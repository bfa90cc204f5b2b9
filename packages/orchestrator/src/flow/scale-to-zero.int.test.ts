// Needs a real Redis: a role KEDA scaled to zero has no live replica, so nothing of it is in the
// registry but what it published. The planner must still plan for it (when it said it scales to
// zero), the subtask must wait in its queue (what KEDA's trigger counts), and a replica started
// afterwards must run it to completion. A role that did not say so keeps being left out at zero.
import { queueNames, RoleInfo, redisKeys, type TaskView } from '@flotilla/contracts';
import { waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startRole, taskEnded } from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const SCALES_TO_ZERO = { WORKER_SCALE_TO_ZERO: 'true', ROLE_FORGET_AFTER_S: '3600' };

const listRoles = async (hh: Harness) =>
  ((await hh.app.inject({ method: 'GET', url: '/v1/roles' })).json() as { roles: RoleInfo[] }).roles;

describe('a role that scales to zero', () => {
  it('is listed with 0 replicas, gets a planned subtask while none runs, and a replica started later completes the task', async () => {
    const hh = await startHarness({ llm: offlineLlm() });
    h = hh;
    // Each role registers once, as a deployed replica would, then stops: its replicas deregister at once.
    await (await startRole(hh, { role: 'researcher', env: SCALES_TO_ZERO })).close();
    await (await startRole(hh, { role: 'coder' })).close();

    const roles = await listRoles(hh);
    expect(roles.map((r) => RoleInfo.parse(r))).toEqual(roles);
    expect(roles).toEqual([
      expect.objectContaining({ role: 'researcher', replicas: 0, versions: [], scalesToZero: true }),
    ]);
    // The role is forgotten an hour after its last heartbeat (ROLE_FORGET_AFTER_S): its meta expires.
    const ttl = await hh.redis.pttl(redisKeys(hh.prefix).roleMeta('researcher'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(await hh.redis.pttl(redisKeys(hh.prefix).roleMeta('coder'))).toBe(-1);

    const res = await hh.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'look up the tide tables' } });
    expect(res.statusCode).toBe(202);
    const { taskId } = res.json() as { taskId: string };

    // Planned for the role at zero: the subtask waits in its queue, where KEDA's list trigger sees it.
    const queue = new Queue(queueNames.role('researcher'), { connection: hh.connection, prefix: hh.prefix });
    try {
      const waiting = await waitFor(
        async () => {
          const jobs = await queue.getWaiting();
          return jobs.length > 0 ? jobs : undefined;
        },
        { what: 'a researcher job to wait in the queue' },
      );
      expect(waiting.map((j) => j.id)).toEqual([`${taskId}.s1`]);
    } finally {
      await queue.close();
    }
    const running = (await hh.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}` })).json() as TaskView;
    expect(running.status).toBe('running');
    expect(running.subtasks.map((s) => [s.role, s.state])).toEqual([['researcher', 'waiting']]);

    // KEDA's part, done by hand: a replica starts, takes the waiting job and the task completes.
    await startRole(hh, { role: 'researcher', replicas: ['woken-1'], env: SCALES_TO_ZERO });
    const done = await taskEnded(hh, taskId);
    expect(done.status).toBe('completed');
    expect(done.subtasks).toEqual([
      expect.objectContaining({ role: 'researcher', state: 'completed', replica: 'woken-1' }),
    ]);
    expect((await listRoles(hh)).find((r) => r.role === 'researcher')).toMatchObject({
      replicas: 1,
      scalesToZero: true,
    });
  });

  it('control: a role that did not opt in is not planned at zero, so a goal for it finds no role', async () => {
    const hh = await startHarness({ llm: offlineLlm() });
    h = hh;
    await (await startRole(hh, { role: 'researcher' })).close();
    expect(await listRoles(hh)).toEqual([]);
    const res = await hh.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal: 'look up the tide tables' } });
    const { taskId } = res.json() as { taskId: string };
    const done = await taskEnded(hh, taskId);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/^no_live_roles: /);
    expect(done.subtasks).toEqual([]);
  });
});
