// Runs real worker processes against a real Redis: invalid input, SIGTERM drain and stalled
// recovery are about processes, signals and BullMQ's locks, none of which a mock would show.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queueNames, redisKeys, type SubtaskEnvelopeInput, type SubtaskResult, TaskEvent } from '@flotilla/contracts';
import {
  freePort,
  type RunningProcess,
  startProcess,
  stopAll,
  testServices,
  uniquePrefix,
  waitFor,
} from '@flotilla/test-utils';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { workerRunningCheck } from '../health/index.js';
import { readRunLedger, readTaskEvents } from './events.js';

const fixture = fileURLToPath(new URL('../../dist/worker/fixtures/sleepy-worker.js', import.meta.url));
const { redisUrl } = testServices();

let prefix: string;
let redis: Redis;
let queue: Queue;
let events: QueueEvents;
let procs: RunningProcess[];

const envelope = (subtaskId: string, input: unknown): SubtaskEnvelopeInput => ({
  taskId: 'task1',
  subtaskId,
  role: 'sleepy',
  input,
  budget: { maxSteps: 5, maxToolCalls: 5, maxSeconds: 60, maxTokens: 1000 },
  deadline: Date.now() + 60_000,
});

async function startWorker(name: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const proc = startProcess(process.execPath, [fixture], {
    env: {
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: prefix,
      HEALTH_PORT: String(port),
      REPLICA_ID: name,
      LOG_LEVEL: 'info',
      LLM_PROVIDER: 'offline',
      ...env,
    },
  });
  procs.push(proc);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, { what: `${name} ready` });
  return proc;
}

beforeEach(async () => {
  prefix = uniquePrefix('worker');
  procs = [];
  redis = new Redis(redisUrl);
  queue = new Queue(queueNames.role('sleepy'), { connection: { url: redisUrl }, prefix });
  events = new QueueEvents(queueNames.role('sleepy'), { connection: { url: redisUrl }, prefix });
  await events.waitUntilReady();
});

afterEach(async () => {
  await stopAll(procs);
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  redis.disconnect();
});

describe('runWorker', () => {
  it('fails invalid input once with invalid_input and does not retry it', async () => {
    await startWorker('w1');
    const job = await queue.add('run', envelope('bad', { ms: 'soon' }), { attempts: 3 });
    await expect(job.waitUntilFinished(events, 15_000)).rejects.toThrow(/^invalid_input: /);
    const failed = await queue.getJob(job.id as string);
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toMatch(/ms/);
    expect(await queue.getJobCounts('failed', 'wait', 'delayed')).toEqual({ failed: 1, wait: 0, delayed: 0 });
  });

  it('runs no effect for a task cancelled before its subtask started, and records the run cancelled', async () => {
    const markFile = join(mkdtempSync(join(tmpdir(), 'flotilla-mark-')), 'marks');
    await startWorker('w1', { MARK_FILE: markFile });
    // Only the durable key, no pub/sub message: what a replica sees when the cancel came before it
    // took the job (or while its subscriber was reconnecting).
    await redis.set(redisKeys(prefix).cancelled('task1'), '1');
    const late = await queue.add('run', envelope('late', { ms: 0, label: 'late', mark: true }));
    const cancelled = (await late.waitUntilFinished(events, 15_000)) as SubtaskResult;
    expect(cancelled).toMatchObject({ ok: false, stopReason: 'cancelled' });
    expect(existsSync(markFile)).toBe(false);

    // The same job for a live task does mark, so the check above could have failed.
    const live = await queue.add('run', { ...envelope('live', { ms: 0, label: 'live', mark: true }), taskId: 'task2' });
    expect(((await live.waitUntilFinished(events, 15_000)) as SubtaskResult).ok).toBe(true);
    expect(readFileSync(markFile, 'utf8')).toBe('live\n');

    // The cancelled run still counts in the ledger and its events, started then finished.
    expect(await readRunLedger(redis, prefix, 'task1')).toEqual({ late: 1 });
    const recorded = (await readTaskEvents(redis, prefix, 'task1')).map(({ event }) => TaskEvent.parse(event));
    expect(recorded).toMatchObject([
      { type: 'subtask_started', subtaskId: 'late', role: 'sleepy', replica: 'w1' },
      { type: 'subtask_finished', subtaskId: 'late', replica: 'w1', ok: false, stopReason: 'cancelled' },
    ]);
  });

  it('lets a running job finish on SIGTERM and exits 0', async () => {
    const worker = await startWorker('w1', { SHUTDOWN_GRACE_MS: '20000' });
    const job = await queue.add('run', envelope('s1', { ms: 1500, label: 'drained' }));
    await waitFor(async () => (await job.isActive()) || undefined, { what: 'job active' });
    worker.signal('SIGTERM');
    const result = (await job.waitUntilFinished(events, 20_000)) as SubtaskResult;
    expect(result.ok).toBe(true);
    expect(result.output).toEqual({ label: 'drained' });
    expect(await worker.exited).toBe(0);
    // It left the registry on the way out rather than aging out.
    expect(await redis.zscore(redisKeys(prefix).roleReplicas('sleepy'), 'w1')).toBeNull();
  });

  it('hands a job that outlasts the grace period back to the queue for another replica, and loses none', async () => {
    const fast = { WORKER_LOCK_MS: '1500', WORKER_STALLED_INTERVAL_MS: '500' };
    const first = await startWorker('w1', { ...fast, SHUTDOWN_GRACE_MS: '300' });
    const job = await queue.add('run', envelope('long', { ms: 4000, label: 'survivor' }));
    await waitFor(async () => (await job.isActive()) || undefined, { what: 'job active on w1' });
    first.signal('SIGTERM');
    // Handing the job back is a clean drain: exit 0, and the job is waiting again at once, not held
    // until its lock expires (no other replica runs yet whose stalled check could have moved it).
    expect(await first.exited).toBe(0);
    expect(await job.getState()).toBe('waiting');

    await startWorker('w2', fast);
    const result = (await job.waitUntilFinished(events, 30_000)) as SubtaskResult;
    expect(result.ok).toBe(true);
    expect(result.worker.replica).toBe('w2');
    // Started twice (at least once delivery), completed once.
    expect(await readRunLedger(redis, prefix, 'task1')).toEqual({ long: 2 });
    const finished = (await readTaskEvents(redis, prefix, 'task1')).filter((e) => e.event.type === 'subtask_finished');
    expect(finished).toHaveLength(1);
  });

  it('exits 78 with one line naming LLM_PROVIDER when no model is configured: no silent fake model', async () => {
    const port = await freePort();
    const proc = startProcess(process.execPath, [fixture], {
      env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, HEALTH_PORT: String(port), LLM_PROVIDER: '' },
    });
    procs.push(proc);
    expect(await proc.exited).toBe(78);
    expect(proc.stderr()).toMatch(/^config error: LLM_PROVIDER: required, but not set/m);
    expect(proc.stderr()).not.toMatch(/^\s+at /m);
  });

  it('logs tool result samples at LOG_TOOL_RESULT_SAMPLE_RATE', async () => {
    const markFile = join(mkdtempSync(join(tmpdir(), 'flotilla-mark-')), 'marks');
    const samples = async (rate: string, taskId: string) => {
      const worker = await startWorker(`w-${rate}`, { MARK_FILE: markFile, LOG_TOOL_RESULT_SAMPLE_RATE: rate });
      const job = await queue.add('run', { ...envelope('s1', { ms: 0, label: 'sampled', mark: true }), taskId });
      await job.waitUntilFinished(events, 15_000);
      await waitFor(async () => worker.stdout().includes('"audit"') || undefined, { what: 'audit line' });
      // Stopped before the next one starts, so that one is sure to take the next job.
      worker.signal('SIGTERM');
      await worker.exited;
      const audits = worker
        .stdout()
        .split('\n')
        .filter((line) => line.includes('"audit"'));
      return audits.map((line) => (JSON.parse(line) as { toolResult?: { sample?: string } }).toolResult?.sample);
    };
    // Every result at 1: the sample carries the tool's output...
    expect(await samples('1', 'task-all')).toEqual([JSON.stringify({ marked: 'sampled' })]);
    // ...and none at 0 (the size alone), so the setting, not a default, decided.
    expect(await samples('0', 'task-none')).toEqual([undefined]);
  });
});

describe('workerRunningCheck', () => {
  it('fails while the BullMQ worker is not fetching jobs, and passes while it is', async () => {
    const worker = new Worker(queueNames.role('idle'), async () => null, {
      connection: { url: redisUrl, maxRetriesPerRequest: null },
      prefix,
      autorun: false,
    });
    const check = workerRunningCheck(worker);
    try {
      await expect(check.check(AbortSignal.timeout(1000))).rejects.toThrow(/not running/);
      void worker.run();
      await waitFor(async () => worker.isRunning() || undefined, { what: 'worker running' });
      await expect(check.check(AbortSignal.timeout(1000))).resolves.toBeUndefined();
    } finally {
      await worker.close();
    }
    await expect(check.check(AbortSignal.timeout(1000))).rejects.toThrow(/not running/);
  });
});
