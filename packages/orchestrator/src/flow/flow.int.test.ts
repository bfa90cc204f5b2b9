// Needs a real Redis: plan and aggregate workers, BullMQ flows across role queues, events streams
// and the cancellation channel are the things under test, with the runtime's real runWorker as the
// role workers.
import { queueNames, redisKeys, type TaskView } from '@flotilla/contracts';
import { createMemory } from '@flotilla/runtime';
import type { LlmClient } from '@flotilla/runtime/llm';
import { readTaskEvents } from '@flotilla/runtime/worker';
import { testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import {
  aggregationResult,
  type Harness,
  Question,
  readSse,
  startHarness,
  startRole,
  taskEnded,
  untilAborted,
} from '../testing/harness.test.helpers.js';
import { offlineLlm } from '../testing/offline.test.helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  // Closes the harness's role workers too.
  await h?.close();
  h = undefined;
});

async function submit(hh: Harness, goal: string): Promise<string> {
  const res = await hh.app.inject({ method: 'POST', url: '/v1/tasks', payload: { goal } });
  expect(res.statusCode).toBe(202);
  return (res.json() as { taskId: string }).taskId;
}

const view = async (hh: Harness, taskId: string) =>
  (await hh.app.inject({ method: 'GET', url: `/v1/tasks/${taskId}` })).json() as TaskView;

/**
 * Takes `subtaskId`'s subtask_finished event out of the task's stream, as if Redis had refused the
 * worker's write while its job completed.
 */
async function loseFinishedEvent(hh: Harness, taskId: string, subtaskId: string): Promise<void> {
  const key = redisKeys(hh.prefix).taskEvents(taskId);
  for (const { id, event } of await readTaskEvents(hh.redis, hh.prefix, taskId)) {
    if (event.type === 'subtask_finished' && event.subtaskId === subtaskId) await hh.redis.xdel(key, id);
  }
}

describe('fan-out and fan-in', () => {
  it('plans one subtask per clause, runs them on live replicas and completes with an answer', async () => {
    h = await startHarness({ llm: offlineLlm() });
    const seen: string[] = [];
    await startRole(h, {
      role: 'researcher',
      replicas: ['replica-a', 'replica-b'],
      handler: async ({ question }, ctx) => {
        seen.push(ctx.envelope.subtaskId);
        // One model turn's worth, so the task's usage has something of each subtask's to add up.
        ctx.budget.chargeStep();
        return { stopReason: 'finish', output: { answer: `notes on ${question}` } };
      },
    });
    const taskId = await submit(h, 'Find the capital of France; find the capital of Spain; find the capital of Italy');
    const done = await taskEnded(h, taskId);

    expect(done.status).toBe('completed');
    expect(done.partial).toBe(false);
    expect(done.plan).toHaveLength(3);
    expect(done.subtasks.map((s) => s.state)).toEqual(['completed', 'completed', 'completed']);
    for (const s of done.subtasks) expect(['replica-a', 'replica-b']).toContain(s.replica);
    expect(done.answer?.length).toBeGreaterThan(0);
    expect(done.answer).toContain('France');
    expect(done.stopReasons).toEqual({ s1: 'finish', s2: 'finish', s3: 'finish' });
    expect(done.usage.steps).toBe(3);
    expect(seen.sort()).toEqual(['s1', 's2', 's3']);
  });

  it('keeps the answer and the research notes in memory, tagged with the task id', async () => {
    const store = createMemory({ url: testServices().chromaUrl, collectionPrefix: uniquePrefix('mem') });
    const memory = store.forTenant('default');
    try {
      h = await startHarness({ llm: offlineLlm(), memory: store });
      await startRole(h, {
        role: 'researcher',
        handler: async ({ question }) => ({ stopReason: 'finish', output: `note about ${question}` }),
      });
      const taskId = await submit(h, 'lighthouses of Norway; lighthouses of Chile');
      const done = await taskEnded(h, taskId);
      expect(done.status).toBe('completed');
      // Memory is written after the task completes, which the task's record says once it is done.
      await waitFor(async () => (await h!.orchestrator.store.get(taskId))?.remembered, { what: 'memory written' });
      const answers = await memory.query('answers', 'lighthouses', { where: { taskId } });
      expect(answers.map((a) => a.text)).toEqual([done.answer]);
      const notes = await memory.query('notes', 'lighthouses', { n: 5, where: { taskId } });
      expect(notes.map((n) => n.provenance.subtaskId).sort()).toEqual(['s1', 's2']);
    } finally {
      await memory.deleteNamespace('answers');
      await memory.deleteNamespace('notes');
    }
  });

  it('gives each subtask a slice of the budget and the task deadline', async () => {
    h = await startHarness({ llm: offlineLlm() });
    const envelopes: { budget: unknown; deadline: number }[] = [];
    await startRole(h, {
      role: 'researcher',
      handler: async (_input, { envelope }) => {
        envelopes.push({ budget: envelope.budget, deadline: envelope.deadline });
        return { stopReason: 'finish', output: 'ok' };
      },
    });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/tasks',
      payload: { goal: 'a; b', budget: { maxSteps: 8, maxTokens: 1000 } },
    });
    const taskId = (res.json() as { taskId: string }).taskId;
    await taskEnded(h, taskId);
    expect(envelopes).toHaveLength(2);
    expect(envelopes[0]?.budget).toMatchObject({ maxSteps: 4, maxToolCalls: 5, maxTokens: 500 });
    expect(envelopes[0]?.deadline).toBe(envelopes[1]?.deadline);
  });

  it('completes with a partial result when a child fails for good', async () => {
    h = await startHarness({ llm: offlineLlm() });
    // The refinement is not in the published JSON Schema, so the planner accepts what the worker then
    // rejects: s2's input fails the worker's validation, which fails its job for good (invalid_input).
    await startRole(h, {
      role: 'researcher',
      input: Question.refine(({ question }) => !question.includes('two'), { message: 'too vague' }),
      handler: async (_input, { envelope }) => ({ stopReason: 'finish', output: `result ${envelope.subtaskId}` }),
    });
    const taskId = await submit(h, 'research topic one; research topic two');
    const done = await taskEnded(h, taskId);
    expect(done.status).toBe('completed');
    expect(done.partial).toBe(true);
    expect(done.subtasks[1]).toMatchObject({ subtaskId: 's2', state: 'failed', stopReason: 'invalid_input' });
    expect(done.subtasks[1]?.error).toContain('too vague');
    expect(done.subtasks[0]?.state).toBe('completed');
  });

  it("rebuilds a subtask_finished event a worker lost from the child's result, once", async () => {
    // Aggregation waits until the test has taken s1's finished event out of the stream.
    h = await startHarness({ llm: offlineLlm(), autorun: false });
    await startRole(h, {
      role: 'researcher',
      handler: async (_input, { envelope }) => ({ stopReason: 'finish', output: `result ${envelope.subtaskId}` }),
    });
    void h.orchestrator.planWorker.run();
    const taskId = await submit(h, 'first thing; second thing');
    const aggregate = new Queue(queueNames.aggregate, { connection: h.connection, prefix: h.prefix });
    try {
      await waitFor(async () => (await aggregate.getJob(taskId))?.isWaiting(), { what: 'both children done' });
    } finally {
      await aggregate.close();
    }
    await loseFinishedEvent(h, taskId, 's1');
    expect((await view(h, taskId)).subtasks[0]?.state).toBe('active');
    void h.orchestrator.aggregateWorker.run();

    const done = await taskEnded(h, taskId);
    expect(done.subtasks[0]).toMatchObject({ subtaskId: 's1', state: 'completed', replica: 'researcher-1' });
    const finishedIds = (await readTaskEvents(h.redis, h.prefix, taskId)).flatMap(({ event }) =>
      event.type === 'subtask_finished' ? [event.subtaskId] : [],
    );
    expect(finishedIds.sort()).toEqual(['s1', 's2']);
  });

  it('marks a subtask that stopped on a limit as failed and the result partial', async () => {
    h = await startHarness({ llm: offlineLlm() });
    await startRole(h, {
      role: 'researcher',
      handler: async (_input, { envelope }) =>
        envelope.subtaskId === 's1'
          ? { stopReason: 'max_steps', error: 'ran out of steps' }
          : { stopReason: 'finish', output: 'fine' },
    });
    const done = await taskEnded(h, await submit(h, 'first thing; second thing'));
    expect(done).toMatchObject({ status: 'completed', partial: true, stopReasons: { s1: 'max_steps', s2: 'finish' } });
  });

  it('keeps all state in Redis: a task accepted by one orchestrator is planned and finished by another', async () => {
    const accepting = await startHarness({ llm: offlineLlm(), autorun: false, cleanup: false });
    let taskId: string;
    try {
      taskId = await submit(accepting, 'first part; second part');
    } finally {
      await accepting.close();
    }
    // The second replica starts its workers only once a role is live, or it would plan for no one.
    h = await startHarness({ llm: offlineLlm(), prefix: accepting.prefix, autorun: false });
    await startRole(h, { role: 'researcher', handler: async () => ({ stopReason: 'finish', output: 'done' }) });
    void h.orchestrator.planWorker.run();
    void h.orchestrator.aggregateWorker.run();
    const done = await taskEnded(h, taskId);
    expect(done).toMatchObject({ status: 'completed', partial: false });
    expect(done.subtasks).toHaveLength(2);
  });

  it('a planning job retried after a crash dispatches the plan the first attempt stored, without planning again', async () => {
    const offline = offlineLlm();
    let planCalls = 0;
    const llm: LlmClient = {
      provider: offline.provider,
      model: offline.model,
      chat: (request, options) => {
        if (request.responseFormat?.name === 'plan') planCalls++;
        return offline.chat(request, options);
      },
    };
    h = await startHarness({ llm, autorun: false });
    await startRole(h, {
      role: 'researcher',
      handler: async ({ question }) => ({ stopReason: 'finish', output: question }),
    });
    const taskId = await submit(h, 'a goal the planner would split; into two');
    // What a first attempt leaves behind when it dies right after choosing a plan.
    await h.orchestrator.store.transition(taskId, { from: ['queued'], to: 'planning' });
    await h.orchestrator.store.savePlan(taskId, [
      { subtaskId: 's1', role: 'researcher', input: { question: 'stored plan' } },
    ]);
    void h.orchestrator.planWorker.run();
    void h.orchestrator.aggregateWorker.run();

    const done = await taskEnded(h, taskId);
    expect(done.status).toBe('completed');
    expect(done.plan).toEqual([{ subtaskId: 's1', role: 'researcher', input: { question: 'stored plan' } }]);
    expect(planCalls).toBe(0);
  });

  it.each([
    ['asks once more when the answer is empty, and completes with the second', 1, 'completed'],
    ['fails saying the model gave an empty answer when it does so twice', 2, 'failed'],
  ] as const)('%s', async (_, emptyAnswers, status) => {
    const offline = offlineLlm();
    let answers = 0;
    const llm: LlmClient = {
      provider: offline.provider,
      model: offline.model,
      chat: async (request, options) => {
        const res = await offline.chat(request, options);
        // The aggregator's calls are the ones with neither a response format (the planner) nor tools.
        if (request.responseFormat || request.tools?.length) return res;
        answers++;
        return answers <= emptyAnswers ? { ...res, content: '  ' } : res;
      },
    };
    h = await startHarness({ llm });
    await startRole(h, {
      role: 'researcher',
      handler: async ({ question }) => ({ stopReason: 'finish', output: question }),
    });
    const done = await taskEnded(h, await submit(h, 'one question'));
    expect(done.status).toBe(status);
    expect(answers).toBe(2);
    if (status === 'completed') expect(done.answer?.trim()).not.toBe('');
    else expect(done.error).toBe('aggregation_error: model_error: the model gave an empty answer twice');
  });

  it('fails clearly when no role is live', async () => {
    h = await startHarness({ llm: offlineLlm() });
    const done = await taskEnded(h, await submit(h, 'anything'));
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/^no_live_roles: /);
  });
});

describe('cancellation', () => {
  it('stops a running task: the running child sees its AbortSignal, waiting ones are removed', async () => {
    h = await startHarness({ llm: offlineLlm() });
    let aborted = 0;
    let started = 0;
    await startRole(h, {
      role: 'researcher',
      concurrency: 4,
      handler: async (_input, { signal }) => {
        started++;
        signal.addEventListener('abort', () => aborted++);
        return untilAborted(signal);
      },
    });
    // One replica with concurrency 4 runs four subtasks at once; five leaves one waiting.
    const taskId = await submit(h, 'a; b; c; d; e');
    await waitFor(async () => (await view(h!, taskId)).subtasks.filter((s) => s.state === 'active').length === 4, {
      what: 'four subtasks running',
    });

    const res = await h.app.inject({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` });
    expect(res.statusCode).toBe(202);
    expect((res.json() as TaskView).status).toBe('cancelled');

    await waitFor(() => aborted === 4, { what: 'running subtasks to see the abort' });
    const v = await waitFor(
      async () => {
        const current = await view(h!, taskId);
        return current.subtasks.every((s) => s.state === 'cancelled') ? current : undefined;
      },
      { what: 'every subtask cancelled' },
    );
    expect(v.status).toBe('cancelled');
    expect(started).toBe(4);
    expect(await h.orchestrator.queues.role('researcher').getJob(`${taskId}.s5`)).toBeUndefined();

    // Cancelling again is a no-op; the aggregation that runs after the last child skips the task.
    expect((await h.app.inject({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` })).statusCode).toBe(202);
    expect(await aggregationResult(h, taskId)).toEqual({ outcome: 'skipped', status: 'cancelled' });
    expect((await view(h, taskId)).status).toBe('cancelled');
  });

  it('refuses to cancel a completed task with 409', async () => {
    h = await startHarness({ llm: offlineLlm() });
    await startRole(h, { role: 'researcher', handler: async () => ({ stopReason: 'finish', output: 'x' }) });
    const taskId = await submit(h, 'one thing');
    await taskEnded(h, taskId);
    const res = await h.app.inject({ method: 'POST', url: `/v1/tasks/${taskId}/cancel` });
    expect(res.statusCode).toBe(409);
  });
});

describe('GET /v1/tasks/:id/events', () => {
  it('streams planned, subtask events and completed in order, then ends; Last-Event-ID resumes', async () => {
    h = await startHarness({ llm: offlineLlm(), listen: true });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    await startRole(h, {
      role: 'researcher',
      replicas: ['sse-replica'],
      handler: async () => {
        await gate;
        return { stopReason: 'finish', output: 'found it' };
      },
    });
    const taskId = await submit(h, 'look up one fact; look up another fact');
    const res = await fetch(`${h.url}/v1/tasks/${taskId}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = readSse(res);
    await waitFor(async () => (await view(h!, taskId)).subtasks.some((s) => s.state === 'active'));
    release();
    const events = await reading;

    const types = events.map((e) => e.event);
    expect(types.at(-1)).toBe('completed');
    const planned = types.indexOf('planned');
    const firstFinished = types.indexOf('subtask_finished');
    expect(planned).toBeGreaterThanOrEqual(0);
    expect(firstFinished).toBeGreaterThan(planned);
    expect(types.lastIndexOf('subtask_finished')).toBeLessThan(types.length - 1);
    expect(
      events.filter((e) => e.event === 'subtask_finished').map((e) => (e.data as { replica: string }).replica),
    ).toEqual(['sse-replica', 'sse-replica']);

    // Resuming after the planned event replays exactly what came after it.
    const plannedId = events[planned]?.id ?? '';
    const resumed = await readSse(
      await fetch(`${h.url}/v1/tasks/${taskId}/events`, { headers: { 'last-event-id': plannedId } }),
    );
    expect(resumed.map((e) => e.id)).toEqual(events.slice(planned + 1).map((e) => e.id));
  });

  it('404s an unknown task and 400s a malformed Last-Event-ID', async () => {
    h = await startHarness({ llm: offlineLlm(), listen: true });
    expect((await fetch(`${h.url}/v1/tasks/00000000-0000-4000-8000-000000000000/events`)).status).toBe(404);
    const taskId = await submit(h, 'x');
    const bad = await fetch(`${h.url}/v1/tasks/${taskId}/events`, { headers: { 'last-event-id': 'drop table' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('header.last-event-id');
  });
});
