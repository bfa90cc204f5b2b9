// Killed workers (issue 16): CHAOS_TASKS tasks through a real orchestrator and chaos worker processes on
// real Redis, while a worker is SIGKILLed and replaced at random at least every 2 s. Only real processes,
// real signals and BullMQ's real locks show whether a killed run is picked up again, and the counting
// server (the write tool's far side) is the judge of "exactly once", not the workers' own records.
import { loadavg } from 'node:os';
import { decodeTaskEventEntry, queueNames, redisKeys, type TaskEvent, type TaskView } from '@flotilla/contracts';
import { stopAll, testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ended,
  getTask,
  knob,
  percentile,
  recordFigures,
  type Service,
  sharedEnv,
  startChaosWorker,
  startCounter,
  startOrchestrator,
  submit,
  teardown,
  waitForReady,
} from './harness.js';

const TASKS = knob('CHAOS_TASKS', 1000);
const REPLICAS = knob('CHAOS_REPLICAS', 6);
const WINDOW = knob('CHAOS_WINDOW', 48);
const MAX_KILL_GAP_MS = 2000;
const MIN_KILL_GAP_MS = 1500;

const { redisUrl } = testServices();
const prefix = uniquePrefix('chaos-kill');
const cleanup = teardown(afterAll);

describe('killed workers', () => {
  it(`completes ${TASKS} tasks with every write applied once while workers are SIGKILLed`, async () => {
    const counter = await startCounter();
    cleanup.push(counter.close);
    const env = sharedEnv(redisUrl, prefix);
    const orchestrator = await startOrchestrator({ ...env, PLAN_CONCURRENCY: '8', AGGREGATE_CONCURRENCY: '8' });
    const services: Service[] = [orchestrator];
    cleanup.push(() => stopAll(services.map((s) => s.proc)));
    const workerEnv = {
      ...env,
      CHAOS_COUNTER_URL: counter.url,
      HTTP_ALLOWLIST: new URL(counter.url).host,
      WORKER_CONCURRENCY: '4',
      CHAOS_WORK_MS: '200',
    };
    let n = 0;
    const live: (Service & { ready?: boolean })[] = [];
    const spawn = async (ready = false) => {
      const w: Service & { ready?: boolean } = await startChaosWorker(`chaos-${++n}`, workerEnv, ready);
      services.push(w);
      live.push(w);
      if (ready) w.ready = true;
      else
        void waitForReady(w).then(
          () => {
            w.ready = true;
          },
          () => undefined,
        );
      return w;
    };
    await Promise.all(Array.from({ length: REPLICAS }, () => spawn(true)));

    // The killer: a random live replica every 1.5-2 s, replaced at once by a fresh one (a new name, so
    // the ledger says which incarnation ran what).
    const kills: { replica: string; at: number }[] = [];
    let killing = true;
    const killer = (async () => {
      while (killing) {
        await new Promise((r) => setTimeout(r, MIN_KILL_GAP_MS + Math.random() * (MAX_KILL_GAP_MS - MIN_KILL_GAP_MS)));
        if (!killing) break;
        // A replica that is up and taking jobs when there is one: killing only half-started ones would
        // test start-up, not recovery.
        const pool = live.some((w) => w.ready) ? live.filter((w) => w.ready) : live;
        const victim = pool[Math.floor(Math.random() * pool.length)];
        live.splice(live.indexOf(victim as Service), 1);
        if (!victim) continue;
        kills.push({ replica: victim.name, at: Date.now() });
        victim.proc.signal('SIGKILL');
        await victim.proc.exited;
        await spawn();
      }
    })();

    // Submission: a handful of POSTs in flight at a time, as many clients would, and no more than WINDOW
    // tasks open, so a redelivered job waits for its lock, not behind a backlog of fresh ones (the
    // resume time is the recovery's, not the queue's).
    const ids: string[] = [];
    const views = new Map<string, TaskView>();
    const started = Date.now();
    let next = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const open = ids.filter((id) => id && !views.has(id));
        for (let i = 0; i < open.length; i += 25) {
          await Promise.all(
            open.slice(i, i + 25).map(async (id) => {
              const v = await getTask(orchestrator.url, id);
              if (ended(v)) views.set(id, v);
            }),
          );
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < TASKS) {
          if (next - views.size >= WINDOW) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          const i = next++;
          ids[i] = await submit(orchestrator.url, `chaos item ${i}`);
        }
      }),
    );
    await waitFor(() => views.size === TASKS || undefined, {
      what: `${TASKS} tasks to end`,
      timeoutMs: 15 * 60_000,
      intervalMs: 500,
    });
    polling = false;
    await poller;
    const elapsedMs = Date.now() - started;
    killing = false;
    await killer;

    const redis = new Redis(redisUrl);
    cleanup.push(async () => redis.disconnect());
    // The ledger's starts, with their times: a run after a kill of the replica that had it is a redelivery.
    const resumeMs: number[] = [];
    let redelivered = 0;
    let runs = 0;
    for (const [id, view] of views) {
      const subRuns = view.subtasks.reduce((s, t) => s + (t.runs ?? 0), 0);
      runs += subRuns;
      if (subRuns <= view.subtasks.length) continue;
      redelivered += subRuns - view.subtasks.length;
      const entries = await redis.xrange(redisKeys(prefix).taskEvents(id), '-', '+');
      const starts = entries
        .flatMap(([, fields]) => decodeTaskEventEntry(fields) ?? [])
        .filter((e): e is Extract<TaskEvent, { type: 'subtask_started' }> => e.type === 'subtask_started');
      for (let i = 1; i < starts.length; i++) {
        const prev = starts[i - 1];
        const cur = starts[i];
        if (!prev || !cur || prev.subtaskId !== cur.subtaskId) continue;
        const kill = kills.find((k) => k.replica === prev.replica);
        if (kill && kill.at >= Date.parse(prev.at)) resumeMs.push(Date.parse(cur.at) - kill.at);
      }
    }

    const stuck: Record<string, number> = {};
    for (const name of [queueNames.role('chaos'), queueNames.plan, queueNames.aggregate]) {
      const q = new Queue(name, { connection: { url: redisUrl }, prefix });
      const counts = await q.getJobCounts('active', 'wait', 'waiting-children', 'delayed', 'prioritized');
      stuck[name] = Object.values(counts).reduce((a, b) => a + b, 0);
      await q.close();
    }

    const completed = [...views.values()].filter((v) => v.status === 'completed' && !v.partial).length;
    const texts = [...Array(TASKS).keys()].map((i) => `chaos item ${i}`);
    const applied = texts.map((t) => counter.applied.get(t) ?? 0);
    const figures = {
      tasks: TASKS,
      replicas: REPLICAS,
      kills: kills.length,
      restarts: kills.length,
      elapsedS: Math.round(elapsedMs / 1000),
      completed,
      lost: applied.filter((c) => c === 0).length,
      duplicated: applied.filter((c) => c > 1).length,
      stuck: Object.values(stuck).reduce((a, b) => a + b, 0),
      runs,
      redelivered,
      writeRequests: counter.requests(),
      resumeSamples: resumeMs.length,
      resumeP50S: +(percentile(resumeMs, 50) / 1000).toFixed(1),
      resumeP95S: +(percentile(resumeMs, 95) / 1000).toFixed(1),
      resumeMaxS: +(Math.max(...resumeMs) / 1000).toFixed(1),
      // Shared CI machines are busy: the resume times depend on it.
      loadAvg15: +(loadavg()[2] ?? 0).toFixed(1),
    };
    recordFigures('killedWorkers', figures);
    console.log('killed workers:', JSON.stringify(figures));

    const notCompleted = [...views].filter(([, v]) => v.status !== 'completed' || v.partial);
    expect(
      notCompleted.map(([id, v]) => ({
        id,
        status: v.status,
        error: v.error,
        subtasks: v.subtasks.map((t) => t.error),
      })),
    ).toEqual([]);
    expect(kills.length).toBeGreaterThanOrEqual(Math.floor(elapsedMs / MAX_KILL_GAP_MS) - 1);
    // Every write exactly once, by the far side's count; each request carried its idempotency key.
    expect(applied.filter((c) => c !== 1)).toEqual([]);
    expect(counter.missingKey()).toBe(0);
    expect(stuck).toEqual({ [queueNames.role('chaos')]: 0, [queueNames.plan]: 0, [queueNames.aggregate]: 0 });
    // The kills were not in vain: the ledger shows runs started again after a kill.
    expect(redelivered).toBeGreaterThan(0);
    expect(resumeMs.length).toBeGreaterThan(0);
  });
});
