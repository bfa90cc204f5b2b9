// Poison work (issue 16): an invalid payload, a handler that fails for good, one that fails every attempt
// and one that kills its process every time, among ordinary tasks. Each must end failed with a reason after
// a bounded number of runs while the rest of the queue keeps flowing. Crashes and BullMQ's stall counting
// only happen with real processes, so the workers are real ones, restarted when they die as Compose would.
import { queueNames, type SubtaskEnvelopeInput, type TaskView } from '@flotilla/contracts';
import { stopAll, testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import {
  recordFigures,
  type Service,
  settled,
  sharedEnv,
  startChaosWorker,
  startCounter,
  startOrchestrator,
  submit,
  teardown,
} from './harness.js';

const { redisUrl } = testServices();
const prefix = uniquePrefix('chaos-poison');
const cleanup = teardown(afterAll);

const settle = (base: string, id: string) => settled(base, id, 240_000);

describe('poison work', () => {
  it('ends each poison failed with a reason after bounded runs, and the other tasks complete', async () => {
    const counter = await startCounter();
    cleanup.push(counter.close);
    const env = sharedEnv(redisUrl, prefix);
    const orchestrator = await startOrchestrator(env);
    const services: Service[] = [orchestrator];
    cleanup.push(() => stopAll(services.map((s) => s.proc)));
    const workerEnv = {
      ...env,
      CHAOS_COUNTER_URL: counter.url,
      HTTP_ALLOWLIST: new URL(counter.url).host,
      CHAOS_WORK_MS: '50',
      // The bound on runs does not depend on these; short ones keep the crash loop quick.
      WORKER_LOCK_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '500',
    };
    // A supervisor (Compose's `restart: unless-stopped`): a replica that dies is replaced.
    let n = 0;
    let supervising = true;
    let crashes = 0;
    const keep = async () => {
      const w = await startChaosWorker(`chaos-${++n}`, workerEnv);
      services.push(w);
      void w.proc.exited.then((code) => {
        if (code === 'SIGKILL') crashes++;
        if (supervising) void keep();
      });
    };
    await Promise.all([keep(), keep()]);

    // An invalid payload at the API: refused with the field named, nothing queued.
    const bad = await fetch(`${orchestrator.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ goal: 42 }),
    });
    expect(bad.status).toBe(422);
    expect(await bad.text()).toMatch(/goal/);
    // ...and one that got past it onto the role queue (an old producer, a hand-made job): failed once.
    const queue = new Queue(queueNames.role('chaos'), { connection: { url: redisUrl }, prefix });
    cleanup.push(() => queue.close());
    const envelope: SubtaskEnvelopeInput = {
      taskId: 'hand-made',
      subtaskId: 's1',
      role: 'chaos',
      input: { text: 7 },
      budget: { maxSteps: 5, maxToolCalls: 5, maxSeconds: 60, maxTokens: 1000 },
      deadline: Date.now() + 60_000,
    };
    const invalid = await queue.add('run', envelope, { attempts: 3 });
    // Polled, not awaited through QueueEvents: it starts reading its stream at '$' one round trip after
    // it is ready, and a job that fails inside that window (this one fails in milliseconds) is missed.
    const failed = await waitFor(
      async () => {
        const job = await queue.getJob(invalid.id as string);
        return (await job?.isFailed()) ? job : undefined;
      },
      { what: 'the hand-made job to fail', timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(failed.failedReason).toMatch(/^invalid_input: [\s\S]*text/);
    expect(failed.attemptsMade).toBe(1);

    const poisons = {
      throw: await submit(orchestrator.url, 'poison-throw'),
      transient: await submit(orchestrator.url, 'poison-transient'),
      crash: await submit(orchestrator.url, 'poison-crash'),
    };
    const ordinary = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(orchestrator.url, `ordinary ${i}`)));
    const views: Record<string, TaskView> = {};
    for (const [name, id] of Object.entries(poisons)) views[name] = await settle(orchestrator.url, id);
    const rest = await Promise.all(ordinary.map((id) => settle(orchestrator.url, id)));
    supervising = false;

    const runs = (v: TaskView | undefined) => v?.subtasks.map((s) => s.runs ?? 0) ?? [];
    const figures = Object.fromEntries(
      Object.entries(views).map(([name, v]) => [
        name,
        { status: v.status, runs: runs(v), errors: v.subtasks.map((s) => s.error ?? s.stopReason) },
      ]),
    );
    recordFigures('poison', {
      ...figures,
      crashes,
      ordinaryCompleted: rest.filter((v) => v.status === 'completed').length,
    });
    console.log('poison:', JSON.stringify(figures));

    // A non-retryable failure: one run, its reason on the subtask. (The one re-plan may try it once more.)
    expect(views.throw?.status).toBe('failed');
    expect(views.throw?.subtasks[0]?.error).toMatch(/poison: this input always fails/);
    expect(runs(views.throw).every((r) => r === 1)).toBe(true);
    // A transient failure every time: the job's attempts (3), then failed with its reason.
    expect(views.transient?.status).toBe('failed');
    expect(views.transient?.subtasks[0]?.error).toMatch(/transient failure, every time/);
    expect(runs(views.transient).every((r) => r === 3)).toBe(true);
    // A crash every time: BullMQ's stall count ends it (WORKER_MAX_STALLED_COUNT + 1 runs at most).
    expect(views.crash?.status).toBe('failed');
    expect(views.crash?.subtasks[0]?.error).toMatch(/stalled more than allowable limit/);
    expect(runs(views.crash).every((r) => r >= 2 && r <= 6)).toBe(true);
    expect(crashes).toBeGreaterThan(0);
    // The rest of the queue kept flowing, each write once.
    expect(rest.map((v) => v.status)).toEqual(rest.map(() => 'completed'));
    for (let i = 0; i < 20; i++) expect(counter.applied.get(`ordinary ${i}`)).toBe(1);
  });
});
