// Drain under load (issue 16): SIGTERM to every worker while jobs run. Each must exit 0 within its grace
// period, its running work either finished or handed back (its lock expires and another replica takes it),
// and nothing lost. Signals, grace deadlines and BullMQ locks are about real processes.
import { queueNames } from '@flotilla/contracts';
import { stopAll, testServices, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import {
  getTask,
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
const prefix = uniquePrefix('chaos-drain');
const cleanup = teardown(afterAll);

const GRACE_MS = 4000;
const TASKS = 40;

describe('drain under load', () => {
  it('exits every worker 0 within its grace on SIGTERM mid-run, and loses nothing', async () => {
    const counter = await startCounter();
    cleanup.push(counter.close);
    const env = sharedEnv(redisUrl, prefix);
    const orchestrator = await startOrchestrator(env);
    const services: Service[] = [orchestrator];
    cleanup.push(() => stopAll(services.map((s) => s.proc)));
    const workerEnv = (workMs: number) => ({
      ...env,
      CHAOS_COUNTER_URL: counter.url,
      HTTP_ALLOWLIST: new URL(counter.url).host,
      WORKER_CONCURRENCY: '4',
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      CHAOS_WORK_MS: String(workMs),
    });
    // Two that finish their work inside the grace, one whose work outlasts it (handed back).
    const first = await Promise.all([
      startChaosWorker('short-1', workerEnv(1000)),
      startChaosWorker('short-2', workerEnv(1000)),
      startChaosWorker('long-1', workerEnv(3 * GRACE_MS)),
    ]);
    services.push(...first);

    const ids = await Promise.all(Array.from({ length: TASKS }, (_, i) => submit(orchestrator.url, `drain item ${i}`)));
    const queue = new Queue(queueNames.role('chaos'), { connection: { url: redisUrl }, prefix });
    cleanup.push(() => queue.close());
    // Every task planned first: this is the workers' drain. (A plan made while no worker of any role is
    // live fails with no_live_roles, by design; docs/chaos.md.)
    await waitFor(
      async () => {
        const views = await Promise.all(ids.map((id) => getTask(orchestrator.url, id)));
        return views.every((v) => !['queued', 'planning'].includes(v.status)) || undefined;
      },
      { what: 'every task planned', timeoutMs: 60_000, intervalMs: 250 },
    );
    await waitFor(async () => (await queue.getActiveCount()) >= 8 || undefined, { what: 'jobs running' });

    const termAt = Date.now();
    for (const w of first) w.proc.signal('SIGTERM');
    const exits = await Promise.all(first.map(async (w) => ({ code: await w.proc.exited, ms: Date.now() - termAt })));

    // Fresh replicas take what was waiting and what was handed back.
    services.push(
      ...(await Promise.all([
        startChaosWorker('after-1', workerEnv(100)),
        startChaosWorker('after-2', workerEnv(100)),
      ])),
    );
    const views = await Promise.all(ids.map((id) => settled(orchestrator.url, id, 120_000, 500)));
    const handedBack = views.filter((v) => v.subtasks.some((s) => (s.runs ?? 0) > 1)).length;
    recordFigures('drain', { tasks: TASKS, graceMs: GRACE_MS, exitMs: exits.map((e) => e.ms), handedBack });
    console.log('drain:', JSON.stringify({ exits, handedBack }));

    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    // Within the grace, with room for a loaded machine to schedule the exit.
    for (const e of exits) expect(e.ms).toBeLessThan(GRACE_MS + 5000);
    expect(views.filter((v) => v.status !== 'completed').map((v) => [v.error, v.subtasks.map((t) => t.error)])).toEqual(
      [],
    );
    for (let i = 0; i < TASKS; i++) expect(counter.applied.get(`drain item ${i}`)).toBe(1);
    // The long replica's runs were handed back, not lost: they ran again elsewhere.
    expect(handedBack).toBeGreaterThan(0);
  });
});
