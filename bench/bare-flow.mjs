// The yardstick for orchestration overhead: the same shape as a flotilla task, in BullMQ alone and
// nothing else (issue 10's measurement). A plan job whose processor adds, with a FlowProducer, a
// parent with three no-op children; a task's time runs from adding the plan job to the parent's
// completion, seen through QueueEvents (a blocking read of BullMQ's event stream, as flotilla's SSE
// route reads the task's). Runs in the bench's process: it is the library's cost, with no model,
// no API and no services around it.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FlowProducer, Queue, QueueEvents, Worker } from 'bullmq';

/** Concurrency as flotilla's side runs: plan and aggregate as the orchestrator's defaults, children as the bench's researcher. */
export async function startBareFlow(redisUrl, { childConcurrency }) {
  const prefix = `bench-bare-${randomUUID().slice(0, 8)}`;
  const connection = { url: redisUrl, maxRetriesPerRequest: null };
  const bull = { connection, prefix };
  const flows = new FlowProducer(bull);
  const plans = new Queue('plan', bull);
  const events = new QueueEvents('aggregate', bull);
  const workers = [
    new Worker(
      'plan',
      async (job) => {
        const t = job.data.t;
        await flows.add({
          name: 'aggregate',
          queueName: 'aggregate',
          data: { t },
          opts: { jobId: t, removeOnComplete: true },
          children: [1, 2, 3].map((i) => ({
            name: 'noop',
            queueName: 'child',
            data: { t, i },
            opts: { jobId: `${t}.s${i}`, removeOnComplete: true },
          })),
        });
      },
      { ...bull, concurrency: 4 },
    ),
    new Worker('child', async () => ({ ok: true }), { ...bull, concurrency: childConcurrency }),
    new Worker('aggregate', async (job) => Object.keys(await job.getChildrenValues()).length, {
      ...bull,
      concurrency: 4,
    }),
  ];
  // Parent completions by job id: QueueEvents reports every completion once, to this one listener.
  const waiting = new Map();
  events.on('completed', ({ jobId }) => waiting.get(jobId)?.());
  await Promise.all([events.waitUntilReady(), ...workers.map((w) => w.waitUntilReady())]);

  let n = 0;
  return {
    /** One task: milliseconds from adding the plan job to its parent's completion. */
    async run() {
      const t = `t${++n}`;
      const done = new Promise((resolve) => waiting.set(t, resolve));
      const t0 = performance.now();
      await plans.add('plan', { t }, { jobId: `p${n}`, removeOnComplete: true });
      await done;
      const wallMs = performance.now() - t0;
      waiting.delete(t);
      return { wallMs };
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([events.close(), plans.close(), flows.close()]);
    },
  };
}
