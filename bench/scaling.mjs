// Scaling with `--scale researcher=N`: tasks per second with 1..N researcher replicas when every model
// call takes a fixed time, as efficiency against linear. docs/bench.md has the method.
//
// What bounds it on the bench's 2 cores: not the replicas' CPU. A replica runs WORKER_CONCURRENCY (2,
// Compose's default) subtasks at once and each waits MODEL_MS on the model, so N replicas finish at
// most 2N / 0.2 s = 10N subtasks/s (3.3N tasks/s); at N = 4 that is ~13 tasks/s, and the CPU all
// services spend on them (API, planning, the subtasks, aggregation, Redis) is a fraction of one core.
// The orchestrator would bound it at PLAN_CONCURRENCY / MODEL_MS tasks/s (20 with the default 4), so it
// runs with 64 here, and without memory or telemetry, which would spend CPU on the orchestrator's and
// Chroma's side, not the replicas'. What is left to bend the line is flotilla's own per-subtask time
// between model calls (a replica's slot is busy for MODEL_MS plus that) and, on a shared machine,
// whatever else runs on the two cores.
import { performance } from 'node:perf_hooks';
import { queueNames } from '@flotilla/contracts';
import { Queue } from 'bullmq';
import { modelEnv, startBenchModel } from './model.mjs';
import { startStack } from './stack.mjs';

const MODEL_MS = 200;
const WORKER_CONCURRENCY = 2;
/**
 * Tasks in flight per replica. A task spends 2 × MODEL_MS in planning and aggregation, where it keeps
 * no researcher busy, and its three subtasks then need 1.5 slot-rounds of one replica: 6 per replica
 * keeps researcher jobs waiting in the queue all the time (the report shows how often it was empty).
 */
const IN_FLIGHT_PER_REPLICA = 6;

/**
 * Starts the stack with no researcher, then for N = 1..maxReplicas adds one replica (a process of its
 * own) and runs a closed loop of 6N clients, each submitting a task and waiting for its end. The first
 * 6N completions fill the pipeline and are not counted (nor `warmup` more at N = 1); the rate is taken
 * over the next `tasks` completions. Clients stop and in-flight tasks finish before the next replica starts.
 */
export async function measureScaling({ redisUrl, maxReplicas, tasks, warmup, logDir }) {
  const vendor = await startBenchModel({ toolCall: false, delayMs: MODEL_MS });
  const prefix = 'bench-scale';
  const stack = await startStack({
    name: 'scale',
    env: { REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, ...modelEnv(vendor) },
    orchestratorEnv: { RATE_LIMIT_MAX: '1000000000', PLAN_CONCURRENCY: '64', AGGREGATE_CONCURRENCY: '64' },
    researcherEnv: { WORKER_CONCURRENCY: String(WORKER_CONCURRENCY) },
    researchers: 0,
    logDir,
  });
  const researcherQueue = new Queue(queueNames.role('researcher'), { connection: { url: redisUrl }, prefix });
  try {
    const steps = [];
    for (let n = 1; n <= maxReplicas; n++) {
      await stack.addResearcher();
      const clients = IN_FLIGHT_PER_REPLICA * n;
      // Every step starts by filling the pipeline (one completion per client, not counted); the first
      // also warms the orchestrator up (JIT, Redis' first allocations), which every later step finds
      // warm: a cold base would flatter every efficiency divided by it.
      const warm = n === 1 ? clients + warmup : clients;
      steps.push({ replicas: n, ...(await closedLoop(stack.api, researcherQueue, clients, warm, tasks)) });
    }
    const base = steps[0].tasksPerSecond;
    return {
      modelMs: MODEL_MS,
      concurrency: WORKER_CONCURRENCY,
      inFlightPerReplica: IN_FLIGHT_PER_REPLICA,
      steps: steps.map((s) => ({ ...s, efficiency: s.tasksPerSecond / (s.replicas * base) })),
    };
  } finally {
    await researcherQueue.close();
    stack.api.close();
    await stack.stop();
    await vendor.close();
  }
}

async function closedLoop(api, queue, clients, warm, tasks) {
  const completions = [];
  let failed = 0;
  let stopping = false;
  let error;
  const client = async () => {
    try {
      while (!stopping) {
        const taskId = await api.submit('bench: three questions');
        if ((await api.ended(taskId)) !== 'completed') failed++;
        completions.push(performance.now());
      }
    } catch (err) {
      error ??= err;
    }
  };
  const running = Array.from({ length: clients }, client);
  const waitForCount = async (n) => {
    while (completions.length < n) {
      if (error) throw error;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  // While the counted completions come in (after `warm` uncounted ones): is a researcher job waiting?
  // If it ever is not, a replica may have idled for want of work, and the figure would understate it.
  let samples = 0;
  let empty = 0;
  let sample;
  try {
    await waitForCount(warm);
    sample = setInterval(async () => {
      const c = await queue.getJobCounts('wait');
      samples++;
      if (c.wait === 0) empty++;
    }, 100);
    await waitForCount(warm + tasks);
  } finally {
    clearInterval(sample);
    stopping = true;
    await Promise.all(running);
  }

  // Rate between the first and the last counted completion: (n - 1) intervals over their span.
  const counted = completions.slice(warm, warm + tasks);
  const spanS = (counted[counted.length - 1] - counted[0]) / 1000;
  return { tasksPerSecond: (counted.length - 1) / spanS, clients, failed, queueEmptyShare: empty / samples };
}
