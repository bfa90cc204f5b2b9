// Approvals park a subtask in BullMQ's delayed state and resume it on whichever replica takes it
// next, replaying what the run saw: real worker processes (one is SIGKILLed while it waits), real
// Redis and BullMQ, and a local HTTP server playing the model vendor so its requests can be counted.
import { fileURLToPath } from 'node:url';
import { queueNames, type SubtaskEnvelopeInput, type SubtaskResult, TaskEvent } from '@flotilla/contracts';
import {
  type FakeVendor,
  fakeReply,
  freePort,
  type RecordedRequest,
  type RunningProcess,
  startFakeOpenAI,
  startProcess,
  stopAll,
  testServices,
  uniquePrefix,
  waitFor,
} from '@flotilla/test-utils';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApprovalStore } from '../approvals/index.js';
import { readRunLedger, readTaskEvents } from './events.js';

const fixture = fileURLToPath(new URL('../../dist/worker/fixtures/approval-worker.js', import.meta.url));
const { redisUrl } = testServices();
const SECRET = 'hunter2-correct-horse-battery';

let prefix: string;
let redis: Redis;
let queue: Queue;
let events: QueueEvents;
let store: ApprovalStore;
let fake: FakeVendor;
let procs: RunningProcess[];

/** The model: asks for one ledger write (with a password among its arguments), then answers with what it saw. */
const model = (req: RecordedRequest) => {
  const messages = (req.body as { messages: { role: string; content: string | null }[] }).messages;
  const last = messages.at(-1);
  if (last?.role === 'tool')
    return fakeReply.text(`saw: ${last.content ?? ''}`.slice(0, 400), { prompt: 120, completion: 7 });
  return fakeReply.toolCall('ledger_write', { amount: 5, password: SECRET }, { prompt: 100, completion: 10 });
};
const chatRequests = () => fake.requests.filter((r) => r.path === '/v1/chat/completions');

const envelope = (taskId: string): SubtaskEnvelopeInput => ({
  taskId,
  subtaskId: 's1',
  role: 'approver',
  tenant: 'acme',
  input: { goal: 'book 5' },
  budget: { maxSteps: 5, maxToolCalls: 5, maxSeconds: 60, maxTokens: 10_000 },
  deadline: Date.now() + 120_000,
});

async function startWorker(name: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const proc = startProcess(process.execPath, [fixture], {
    env: {
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: prefix,
      HEALTH_PORT: String(port),
      REPLICA_ID: name,
      LOG_LEVEL: 'warn',
      LLM_PROVIDER: 'openai-compatible',
      LLM_BASE_URL: fake.url,
      LLM_MODEL: 'fake',
      LLM_MAX_RETRIES: '0',
      TOOLS_REQUIRE_APPROVAL: 'ledger_*',
      ...env,
    },
  });
  procs.push(proc);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, { what: `${name} ready` });
  return proc;
}

const writes = async () => Number((await redis.get(`${prefix}:test:writes`)) ?? 0);
const eventsOf = async (taskId: string) =>
  (await readTaskEvents(redis, prefix, taskId)).map(({ event }) => TaskEvent.parse(event));

/** Waits until the task's subtask has parked; returns its approval_requested event. */
async function parked(taskId: string) {
  const requested = await waitFor(async () => (await eventsOf(taskId)).find((e) => e.type === 'approval_requested'), {
    what: 'approval_requested',
  });
  if (requested.type !== 'approval_requested') throw new Error('unreachable');
  await waitFor(async () => (await queue.getJobState(`${taskId}.s1`)) === 'delayed', { what: 'job delayed' });
  return requested;
}

/** What the orchestrator's decision does, minus HTTP: the decision, then the job promoted. */
async function decide(approvalId: string, status: 'approved' | 'denied', jobId: string) {
  const result = await store.decide(approvalId, { status, by: 'ops-test', reason: 'test decision' });
  expect(result.kind).toBe('applied');
  await (await queue.getJob(jobId))?.promote();
}

beforeEach(async () => {
  prefix = uniquePrefix('approvals');
  procs = [];
  redis = new Redis(redisUrl);
  store = new ApprovalStore(redis, prefix);
  fake = await startFakeOpenAI(model);
  queue = new Queue(queueNames.role('approver'), { connection: { url: redisUrl }, prefix });
  events = new QueueEvents(queueNames.role('approver'), { connection: { url: redisUrl }, prefix });
  await events.waitUntilReady();
});

afterEach(async () => {
  await stopAll(procs);
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await fake.close();
  redis.disconnect();
});

describe('approvals', () => {
  it('parks the job until approved, then resumes it: the write happens once, the model is not asked again, the budget is what an unparked run pays', async () => {
    await startWorker('w1');
    const job = await queue.add('run', envelope('t-approve'), { jobId: 't-approve.s1' });
    const requested = await parked('t-approve');

    // Parked: out of the worker (no active job), nothing written, one model call so far, and the
    // approver sees the call without its password.
    expect(await queue.getJobCounts('active', 'delayed')).toEqual({ active: 0, delayed: 1 });
    expect(await writes()).toBe(0);
    expect(chatRequests()).toHaveLength(1);
    expect(requested).toMatchObject({ tool: 'ledger_write', subtaskId: 's1', role: 'approver', approvers: 'admin' });
    expect(requested.summary).toContain('"amount":5');
    expect(requested.summary).not.toContain(SECRET);
    expect(requested.summary).toContain('[REDACTED]');
    const approval = await store.get(requested.approvalId);
    expect(approval).toMatchObject({ status: 'pending', owner: 'acme', taskId: 't-approve', jobId: 't-approve.s1' });

    await decide(requested.approvalId, 'approved', 't-approve.s1');
    const result = (await job.waitUntilFinished(events, 15_000)) as SubtaskResult;
    expect(result).toMatchObject({ ok: true, stopReason: 'finish', output: { outcome: 'written' } });
    expect(await writes()).toBe(1);
    // The first reply came from the journal: only the answer after the tool result was asked for.
    expect(chatRequests()).toHaveLength(2);
    // One execution in the ledger; the resume is its own event.
    expect(await readRunLedger(redis, prefix, 't-approve')).toEqual({ s1: 1 });
    expect((await eventsOf('t-approve')).map((e) => e.type)).toEqual([
      'subtask_started',
      'approval_requested',
      'subtask_resumed',
      'subtask_finished',
    ]);

    // Control: the same run where the tool needs no approval pays the same steps, tool calls and tokens.
    await stopAll(procs);
    await startWorker('w2', { TOOLS_REQUIRE_APPROVAL: '' });
    const control = await queue.add('run', envelope('t-control'), { jobId: 't-control.s1' });
    const plain = (await control.waitUntilFinished(events, 15_000)) as SubtaskResult;
    expect(plain.output).toMatchObject({ outcome: 'written' });
    expect(await writes()).toBe(2);
    const { ms: _a, ...parkedUsage } = result.usage;
    const { ms: _b, ...plainUsage } = plain.usage;
    expect(parkedUsage).toEqual(plainUsage);
    expect(parkedUsage).toEqual({ steps: 2, toolCalls: 1, tokens: 237 });
    // Parking used no retry attempt: both jobs completed on their first.
    expect((await queue.getJob('t-approve.s1'))?.attemptsMade).toBe((await queue.getJob('t-control.s1'))?.attemptsMade);
    expect((await queue.getJob('t-control.s1'))?.attemptsMade).toBe(1);
  });

  it('denied: the tool does not run, the model sees approval_denied as its result and finishes without it', async () => {
    await startWorker('w1');
    const job = await queue.add('run', envelope('t-deny'), { jobId: 't-deny.s1' });
    const requested = await parked('t-deny');
    await decide(requested.approvalId, 'denied', 't-deny.s1');
    const result = (await job.waitUntilFinished(events, 15_000)) as SubtaskResult;
    expect(result).toMatchObject({ ok: true, stopReason: 'finish', output: { outcome: 'approval_denied' } });
    expect(await writes()).toBe(0);
    const last = JSON.stringify(chatRequests().at(-1)?.body);
    expect(last).toContain('approval_denied');
    expect(last).toContain('test decision');
  });

  it('times out: nobody decides within APPROVAL_TIMEOUT_S, so the call ends with approval_timeout', async () => {
    await startWorker('w1', { APPROVAL_TIMEOUT_S: '1' });
    const job = await queue.add('run', envelope('t-timeout'), { jobId: 't-timeout.s1' });
    const requested = await parked('t-timeout');
    const result = (await job.waitUntilFinished(events, 15_000)) as SubtaskResult;
    expect(result).toMatchObject({ ok: true, output: { outcome: 'approval_timeout' } });
    expect(await writes()).toBe(0);
    expect(await store.get(requested.approvalId)).toMatchObject({ status: 'timed_out', decidedBy: 'system' });
    // A decision after the timeout is refused: the first writer won.
    expect((await store.decide(requested.approvalId, { status: 'approved', by: 'late', reason: 'x' })).kind).toBe(
      'already',
    );
    expect(JSON.stringify(chatRequests().at(-1)?.body)).toContain('approval_timeout');
  });

  it('loses nothing when the worker holding the parked subtask is SIGKILLed: a fresh one resumes it after approval', async () => {
    const first = await startWorker('w1');
    const job = await queue.add('run', envelope('t-kill'), { jobId: 't-kill.s1' });
    const requested = await parked('t-kill');
    first.signal('SIGKILL');
    await first.exited;
    await startWorker('w2');
    await decide(requested.approvalId, 'approved', 't-kill.s1');
    const result = (await job.waitUntilFinished(events, 15_000)) as SubtaskResult;
    expect(result).toMatchObject({ ok: true, output: { outcome: 'written' }, worker: { replica: 'w2' } });
    expect(await writes()).toBe(1);
    expect(chatRequests()).toHaveLength(2);
    expect(await readRunLedger(redis, prefix, 't-kill')).toEqual({ s1: 1 });
  });
});
