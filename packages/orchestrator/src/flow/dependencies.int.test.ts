// Needs a real Redis: dependents are added to a running BullMQ flow as children of the aggregation
// job, which waits for them (waiting-children) between waves.
import type { SubtaskEnvelope } from '@flotilla/contracts';
import { readTaskEvents } from '@flotilla/runtime/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startRole, taskEnded } from '../testing/harness.test.helpers.js';
import { plannedLlm } from '../testing/offline.test.helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function submit(hh: Harness, goal: string): Promise<string> {
  const res = await hh.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal } });
  expect(res.statusCode).toBe(202);
  return (res.json() as { taskId: string }).taskId;
}

/** The order subtasks started and finished in, from the task's event stream. */
async function timeline(hh: Harness, taskId: string): Promise<string[]> {
  return (await readTaskEvents(hh.redis, hh.prefix, taskId)).flatMap(({ event }) =>
    event.type === 'subtask_started'
      ? [`start ${event.subtaskId}`]
      : event.type === 'subtask_finished'
        ? [`end ${event.subtaskId}`]
        : [],
  );
}

describe('plans with dependencies', () => {
  it('runs a subtask after the ones it depends on, handing it their outputs', async () => {
    h = await startHarness({
      llm: plannedLlm({
        subtasks: [
          { role: 'researcher', input: { question: 'the formula for the area of a circle' } },
          { role: 'researcher', input: { question: 'the radius of the pond' } },
          { role: 'researcher', input: { question: 'compute the area' }, dependsOn: ['s1', 's2'] },
          { role: 'researcher', input: { question: 'round it' }, dependsOn: ['s3'] },
        ],
      }),
    });
    const envelopes = new Map<string, SubtaskEnvelope>();
    await startRole(h, {
      role: 'researcher',
      handler: async ({ question }, ctx) => {
        envelopes.set(ctx.envelope.subtaskId, ctx.envelope);
        const from = (ctx.envelope.dependencies ?? []).map((d) => d.output).join(' + ');
        return { stopReason: 'finish', output: from ? `${question} from (${from})` : `${question}: known` };
      },
    });
    const taskId = await submit(h, 'What is the area of the pond, rounded?');
    const done = await taskEnded(h, taskId);

    expect(done.status).toBe('completed');
    expect(done.partial).toBe(false);
    expect(done.plan.map((s) => s.dependsOn ?? [])).toEqual([[], [], ['s1', 's2'], ['s3']]);
    expect(envelopes.get('s1')?.dependencies).toBeUndefined();
    expect(envelopes.get('s3')?.dependencies).toEqual([
      { subtaskId: 's1', role: 'researcher', output: 'the formula for the area of a circle: known' },
      { subtaskId: 's2', role: 'researcher', output: 'the radius of the pond: known' },
    ]);
    expect(envelopes.get('s4')?.dependencies?.map((d) => d.output)).toEqual([
      'compute the area from (the formula for the area of a circle: known + the radius of the pond: known)',
    ]);
    // Each dependent starts only after every subtask it depends on has finished.
    const order = await timeline(h, taskId);
    const at = (entry: string) => order.indexOf(entry);
    expect(at('start s3')).toBeGreaterThan(Math.max(at('end s1'), at('end s2')));
    expect(at('start s4')).toBeGreaterThan(at('end s3'));
    expect(order.filter((e) => e.startsWith('start'))).toHaveLength(4);
    expect(done.stopReasons).toEqual({ s1: 'finish', s2: 'finish', s3: 'finish', s4: 'finish' });
  });

  it('does not run a subtask whose dependency failed, and says which one', async () => {
    h = await startHarness({
      llm: plannedLlm({
        subtasks: [
          { role: 'researcher', input: { question: 'fail here' } },
          { role: 'researcher', input: { question: 'needs s1' }, dependsOn: ['s1'] },
          { role: 'researcher', input: { question: 'needs s2' }, dependsOn: ['s2'] },
          { role: 'researcher', input: { question: 'independent' } },
        ],
      }),
    });
    const ran: string[] = [];
    await startRole(h, {
      role: 'researcher',
      handler: async ({ question }, ctx) => {
        ran.push(ctx.envelope.subtaskId);
        return question === 'fail here'
          ? { stopReason: 'tool_error', error: 'the page was down' }
          : { stopReason: 'finish', output: `${question}: done` };
      },
    });
    const taskId = await submit(h, 'a goal with a broken first step');
    const done = await taskEnded(h, taskId);

    expect(done.status).toBe('completed');
    expect(done.partial).toBe(true);
    expect(ran.sort()).toEqual(['s1', 's4']);
    expect(done.stopReasons).toEqual({
      s1: 'tool_error',
      s2: 'dependency_failed',
      s3: 'dependency_failed',
      s4: 'finish',
    });
    const s3 = done.subtasks.find((s) => s.subtaskId === 's3');
    expect(s3?.state).toBe('failed');
    expect(s3?.error).toContain('s1');
  });
});

describe('the one re-plan', () => {
  it('plans again once when a subtask fails, runs the new subtasks with what finished, and answers', async () => {
    const llm = plannedLlm(
      {
        subtasks: [
          { role: 'researcher', input: { question: 'the formula' } },
          { role: 'researcher', input: { question: 'flaky: the radius' } },
        ],
      },
      { subtasks: [{ role: 'researcher', input: { question: 'the radius, from the survey' }, dependsOn: ['s1'] }] },
    );
    h = await startHarness({ llm });
    const envelopes = new Map<string, SubtaskEnvelope>();
    await startRole(h, {
      role: 'researcher',
      handler: async ({ question }, ctx) => {
        envelopes.set(ctx.envelope.subtaskId, ctx.envelope);
        return question.startsWith('flaky')
          ? { stopReason: 'runtime_error', error: 'the radius page 500s' }
          : { stopReason: 'finish', output: `${question}: found` };
      },
    });
    const taskId = await submit(h, 'What is the area of the pond?');
    const done = await taskEnded(h, taskId);

    expect(llm.planning).toBe(2);
    expect(done.status).toBe('completed');
    expect(done.plan.map((s) => s.subtaskId)).toEqual(['s1', 's2', 's3']);
    expect(done.stopReasons).toEqual({ s1: 'finish', s2: 'runtime_error', s3: 'finish' });
    expect(envelopes.get('s3')?.dependencies).toEqual([
      { subtaskId: 's1', role: 'researcher', output: 'the formula: found' },
    ]);
    expect(done.answer).toContain('the radius, from the survey: found');
    const planned = (await readTaskEvents(h.redis, h.prefix, taskId)).filter(({ event }) => event.type === 'planned');
    expect(planned.map(({ event }) => event.type === 'planned' && event.replanned)).toEqual([undefined, true]);
  });

  it('marks a re-planned subtask that repeats a failed one as its retry, so its writes reuse its keys', async () => {
    const same = { role: 'researcher', input: { question: 'the radius' } };
    const llm = plannedLlm(
      { subtasks: [same, { role: 'researcher', input: { question: 'the formula' } }] },
      { subtasks: [same, { role: 'researcher', input: { question: 'the radius, from the survey' } }] },
    );
    h = await startHarness({ llm });
    const envelopes = new Map<string, SubtaskEnvelope>();
    await startRole(h, {
      role: 'researcher',
      handler: async ({ question }, ctx) => {
        envelopes.set(ctx.envelope.subtaskId, ctx.envelope);
        return ctx.envelope.subtaskId === 's1'
          ? { stopReason: 'runtime_error', error: 'the radius page 500s' }
          : { stopReason: 'finish', output: `${question}: found` };
      },
    });
    const done = await taskEnded(h, await submit(h, 'What is the area of the pond?'));

    expect(done.plan.map((s) => [s.subtaskId, s.retryOf])).toEqual([
      ['s1', undefined],
      ['s2', undefined],
      ['s3', 's1'],
      ['s4', undefined],
    ]);
    expect(envelopes.get('s3')?.retryOf).toBe('s1');
    expect(envelopes.get('s4')).not.toHaveProperty('retryOf');
    expect(done.stopReasons).toEqual({ s1: 'runtime_error', s2: 'finish', s3: 'finish', s4: 'finish' });
  });

  it('re-plans at most once, and not after a stop no plan can get round', async () => {
    const llm = plannedLlm({ subtasks: [{ role: 'researcher', input: { question: 'flaky' } }] });
    h = await startHarness({ llm });
    const fails = await startRole(h, {
      role: 'researcher',
      handler: async () => ({ stopReason: 'runtime_error', error: 'down' }),
    });
    const first = await taskEnded(h, await submit(h, 'goal one'));
    // The first plan and the one re-plan (whose subtask, s2, fails too): no third.
    expect(llm.planning).toBe(2);
    expect(first.status).toBe('failed');
    expect(first.plan.map((s) => s.subtaskId)).toEqual(['s1', 's2']);

    await fails.close();
    await startRole(h, {
      role: 'researcher',
      handler: async () => ({ stopReason: 'max_tokens', error: 'out of tokens' }),
    });
    const second = await taskEnded(h, await submit(h, 'goal two'));
    expect(llm.planning).toBe(3);
    expect(second.plan).toHaveLength(1);
  });
});
