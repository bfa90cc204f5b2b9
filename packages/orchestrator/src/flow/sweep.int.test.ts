// Needs a real Redis: the sweep is a BullMQ job scheduler over the task indexes that the task
// scripts keep, and what it repairs (a lost planning job, a task whose workers vanished) is only
// visible in queues, task hashes and event streams.
import { randomUUID } from 'node:crypto';
import { queueNames, redisKeys, TaskRequest, type TaskView } from '@flotilla/contracts';
import { ApprovalStore } from '@flotilla/runtime';
import { heartbeat } from '@flotilla/runtime/worker';
import { waitFor } from '@flotilla/test-utils';
import { QueueEvents } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SweepJobResult } from '../flow/sweep-job.js';
import {
  aggregationResult,
  type Harness,
  Question,
  readSse,
  startHarness,
  startRole,
  TEST_LIMITS,
  taskEnded,
} from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const view = async (hh: Harness, taskId: string) =>
  (await hh.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}` })).json() as TaskView;

/** What TaskService.submit writes first; the test then "crashes" before the planning job is added. */
async function createOnly(hh: Harness, goal: string, deadline = Date.now() + 60_000): Promise<string> {
  const taskId = randomUUID();
  const outcome = await hh.orchestrator.store.create({
    taskId,
    request: TaskRequest.parse({ goal }),
    idempotencyKey: undefined,
    limits: TEST_LIMITS,
    deadline,
    traceId: undefined,
  });
  expect(outcome.created).toBe(true);
  return taskId;
}

const indexed = async (hh: Harness, taskId: string) => {
  const keys = redisKeys(hh.prefix);
  const [queued, open] = await Promise.all([
    hh.redis.zscore(keys.queuedTasks, taskId),
    hh.redis.zscore(keys.openTasks, taskId),
  ]);
  return { queued: queued !== null, open: open !== null };
};

describe('a task accepted but never enqueued', () => {
  it('gets planned by the sweep and completes', async () => {
    // Nothing runs yet, so the state right after the "crash" can be checked before the sweep repairs it.
    h = await startHarness({ llm: offlineLlm(), autorun: false });
    await startRole(h, {
      role: 'researcher',
      handler: async ({ question }) => ({ stopReason: 'finish', output: question }),
    });
    const taskId = await createOnly(h, 'first part; second part');
    expect(await h.orchestrator.queues.plan.getJob(taskId)).toBeUndefined();
    expect(await indexed(h, taskId)).toEqual({ queued: true, open: true });

    for (const w of [h.orchestrator.planWorker, h.orchestrator.aggregateWorker, h.orchestrator.sweepWorker])
      void w.run();
    await h.orchestrator.scheduleSweeps();

    const done = await taskEnded(h, taskId);
    expect(done).toMatchObject({ status: 'completed', partial: false });
    expect(done.plan).toHaveLength(2);
    expect(await h.orchestrator.queues.plan.getJob(taskId)).toBeDefined();
    // Off both indexes once it ended, so no later sweep touches it again.
    expect(await indexed(h, taskId)).toEqual({ queued: false, open: false });
  });
});

describe('a task whose workers vanished', () => {
  it('fails with reason deadline past deadline + grace; its event stream ends and its jobs are gone', async () => {
    h = await startHarness({ llm: offlineLlm(), listen: true, sweep: { deadlineGraceMs: 500 } });
    // A replica that registered and was then killed: the registry still lists it (its heartbeat has
    // not aged out), so the planner gives it work, but nothing consumes its queue.
    await heartbeat(h.redis, h.prefix, {
      role: 'ghost',
      description: 'a killed replica',
      inputSchema: z.toJSONSchema(Question) as Record<string, unknown>,
      replica: 'ghost-1',
      version: 'test',
    });
    const cancels: string[] = [];
    const subscriber = h.redis.duplicate();
    try {
      subscriber.on('message', (_channel: string, taskId: string) => cancels.push(taskId));
      await subscriber.subscribe(redisKeys(h.prefix).cancelChannel);

      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/tasks',
        // Two seconds to deadline (and half a second's grace): time enough to open the stream first.
        payload: { goal: 'look something up', budget: { maxSeconds: 2 } },
      });
      const { taskId } = res.json() as { taskId: string };
      const running = await waitFor(
        async () => {
          const v = await view(h!, taskId);
          return v.status === 'running' ? v : undefined;
        },
        { what: 'the task to be dispatched' },
      );
      const ghost = h.orchestrator.queues.role('ghost');
      const jobId = `${taskId}.${running.plan[0]?.subtaskId}`;
      // The job is there to be removed, so its absence below is the sweep's doing.
      expect(await ghost.getJob(jobId)).toBeDefined();

      const stream = await fetch(`${h.url}/v1/tasks/${taskId}/events`);
      const events = await readSse(stream);

      const last = events.at(-1);
      expect(last?.event).toBe('failed');
      expect((last?.data as { reason?: string } | undefined)?.reason).toMatch(/^deadline: still running /);
      const done = await view(h, taskId);
      expect(done.status).toBe('failed');
      expect(done.error).toMatch(/^deadline: /);
      expect(done.subtasks[0]?.state).toBe('waiting');

      // The sweep stops the work after the status changed (and the stream ended), as a cancel does.
      await waitFor(() => cancels.includes(taskId), { what: 'the cancellation message' });
      expect(await ghost.getJob(jobId)).toBeUndefined();
      expect(await h.redis.exists(redisKeys(h.prefix).cancelled(taskId))).toBe(1);
      expect(await indexed(h, taskId)).toEqual({ queued: false, open: false });
      // Removing the last child released the aggregation, which found the task failed.
      expect(await aggregationResult(h, taskId)).toEqual({ outcome: 'skipped', status: 'failed' });
    } finally {
      subscriber.disconnect();
    }
  });

  it('fails only tasks past their deadline by more than the grace', async () => {
    // One sweep, run by hand on tasks whose deadlines are already decided: no clock in the assertions.
    h = await startHarness({ llm: offlineLlm(), autorun: false, sweep: { deadlineGraceMs: 60_000 } });
    const overdue = await createOnly(h, 'overdue', Date.now() - 120_000);
    const inGrace = await createOnly(h, 'within the grace', Date.now() - 1_000);
    const ahead = await createOnly(h, 'before its deadline', Date.now() + 60_000);

    const events = new QueueEvents(queueNames.sweep, { connection: { url: h.redisUrl }, prefix: h.prefix });
    try {
      await events.waitUntilReady();
      void h.orchestrator.sweepWorker.run();
      const job = await h.orchestrator.queues.sweep.add('sweep', {});
      const result = (await job.waitUntilFinished(events, 15_000)) as SweepJobResult;
      expect(result.expired).toBe(1);
    } finally {
      await events.close();
    }
    expect((await view(h, overdue)).status).toBe('failed');
    expect((await view(h, overdue)).error).toMatch(/^deadline: still queued /);
    expect((await view(h, inGrace)).status).toBe('queued');
    expect((await view(h, ahead)).status).toBe('queued');
    expect(await indexed(h, inGrace)).toEqual({ queued: true, open: true });
  });
});

describe('a task waiting for an approval', () => {
  it('is not failed for the time a person took to decide, up to the approval’s own deadline', async () => {
    // One sweep by hand, as above. Both tasks are 120 s past their deadline with a 60 s grace; one
    // has waited 110 s for an operator (still pending, its approval deadline ahead), so its own
    // deadline moved 110 s on; the other waited for no one and is the control.
    h = await startHarness({ llm: offlineLlm(), autorun: false, sweep: { deadlineGraceMs: 60_000 } });
    const now = Date.now();
    const waiting = await createOnly(h, 'waits for a person', now - 120_000);
    const control = await createOnly(h, 'waits for nobody', now - 120_000);
    await new ApprovalStore(h.redis, h.prefix).create({
      id: 'apr-sweep',
      taskId: waiting,
      subtaskId: 's1',
      role: 'researcher',
      tool: 'ledger.write',
      summary: '{}',
      owner: 'default',
      jobId: `${waiting}.s1`,
      argsHash: 'x',
      requestedAt: now - 110_000,
      deadline: now + 190_000,
    });

    const events = new QueueEvents(queueNames.sweep, { connection: { url: h.redisUrl }, prefix: h.prefix });
    try {
      await events.waitUntilReady();
      void h.orchestrator.sweepWorker.run();
      const job = await h.orchestrator.queues.sweep.add('sweep', {});
      const result = (await job.waitUntilFinished(events, 15_000)) as SweepJobResult;
      expect(result.expired).toBe(1);
    } finally {
      await events.close();
    }
    expect((await view(h, control)).status).toBe('failed');
    expect((await view(h, waiting)).status).toBe('queued');
    expect(await indexed(h, waiting)).toEqual({ queued: true, open: true });
  });
});
