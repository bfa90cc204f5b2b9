// `pnpm bench`: goals measured side by side in one run, printed as ratios. Not a test: numbers
// vary with the machine, so nothing here passes or fails; the README quotes a run of it.
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { queueNames, redisKeys } from '@flotilla/contracts';
import { startRedis } from '@flotilla/devkit';
import { createKillSwitch, initTelemetry, setKillSwitch } from '@flotilla/runtime';
import { defineWorker, runWorker } from '@flotilla/runtime/worker';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { writeReadmeBlock } from './readme.mjs';
import { median } from './stats.mjs';

// Rounds of about a second on the bench machine: at 4,000 jobs a round took a sixth of a second, and
// measured more of a worker's ramp-up (and of the scheduler) than of its steady pace.
const JOBS = Number(process.env.BENCH_JOBS ?? 16000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
// --quick (or BENCH_QUICK=1): a few rounds, to check the harness; such a run never writes the README.
const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 21));
// Subtasks per task, as a planner fans a goal out: runWorker's bookkeeping is per task (one stream,
// which is also the ledger, and one cancelled flag), so one task for all jobs would flatter it.
const TASK_SIZE = Number(process.env.BENCH_TASK_SIZE ?? 8);

// BENCH_TELEMETRY=1: what a container has without a collector (the register hook's Prometheus
// MeterProvider and AsyncLocalStorage context manager), for both sides. Off by default: the goal is
// about runWorker's own work, and the bare worker records no metrics.
if (process.env.BENCH_TELEMETRY === '1') await initTelemetry({ env: {} });
const redis = await startRedis({ reuse: false });
const admin = new Redis(redis.url);
// The private Redis keeps its AOF (every write is appended, as in production, on both sides), but
// never rewrites it during the run: a rewrite forks Redis and competes for the same two cores for
// seconds, and whichever side's round it lands in looked slower for it (rounds swung 0.6x-1.3x).
await admin.config('SET', 'auto-aof-rewrite-percentage', '0');
/** The id of the t-th task: the envelopes and forgetTasks must agree. */
const taskOf = (t) => `bench-${t}`;
const envelope = (i) => ({
  v: 1,
  taskId: taskOf(Math.floor(i / TASK_SIZE)),
  subtaskId: `s${i}`,
  role: 'noop',
  input: { i },
  budget: { maxSteps: 5, maxToolCalls: 5, maxSeconds: 60, maxTokens: 1000 },
  deadline: Date.now() + 3_600_000,
});

const queueFor = (prefix) => new Queue(queueNames.role('noop'), { connection: { url: redis.url }, prefix });

/** Adds the jobs in bulk. */
async function fill(queue) {
  for (let i = 0; i < JOBS; i += 500) {
    await queue.addBulk(
      Array.from({ length: Math.min(500, JOBS - i) }, (_, k) => ({
        name: 'run',
        data: envelope(i + k),
        opts: { removeOnComplete: true },
      })),
    );
  }
}

async function drained(queue) {
  for (;;) {
    const c = await queue.getJobCounts('wait', 'paused', 'active', 'prioritized');
    if (c.wait + c.paused + c.active + c.prioritized === 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Jobs per second through whatever `start` runs on `prefix`. The jobs wait in a paused queue and
 * the worker is up before the clock starts, so neither adding jobs nor start-up is measured: only
 * the worker draining the queue, which is what the two sides differ in.
 */
async function throughput(prefix, start) {
  const queue = queueFor(prefix);
  await queue.pause();
  await fill(queue);
  const stop = await start(prefix);
  const t0 = performance.now();
  await queue.resume();
  await drained(queue);
  const secs = (performance.now() - t0) / 1000;
  await stop();
  await queue.obliterate({ force: true });
  await queue.close();
  await forgetTasks(prefix);
  return JOBS / secs;
}

/**
 * Removes what a round left besides its queue (the tasks' event streams), off the clock, so every
 * round starts from the same Redis: otherwise each runWorker round grows the keyspace the next
 * rounds of both sides work in.
 */
async function forgetTasks(prefix) {
  const keys = redisKeys(prefix);
  const pipeline = admin.pipeline();
  for (let t = 0; t < Math.ceil(JOBS / TASK_SIZE); t++) pipeline.unlink(keys.taskEvents(taskOf(t)));
  await pipeline.exec();
}

/** A bare BullMQ Worker with a no-op processor. */
const bare = (round) =>
  throughput(`bench-bare-${round}`, async (prefix) => {
    const worker = new Worker(queueNames.role('noop'), async () => ({ ok: true }), {
      connection: { url: redis.url, maxRetriesPerRequest: null },
      prefix,
      concurrency: CONCURRENCY,
    });
    await worker.waitUntilReady();
    return () => worker.close();
  });

const noop = defineWorker({
  role: 'noop',
  description: 'Does nothing, for the benchmark.',
  input: z.object({ i: z.number() }),
  output: z.object({ i: z.number() }),
  handler: async (input) => ({ stopReason: 'finish', output: input }),
});

/** runWorker with a no-op handler: validation, budget, events, ledger, spans, metrics. */
const flotilla = (round) =>
  throughput(`bench-flotilla-${round}`, async (prefix) => {
    const running = await runWorker(noop, {
      handleSignals: false,
      env: {
        REDIS_URL: redis.url,
        QUEUE_PREFIX: prefix,
        HEALTH_PORT: '0',
        HEALTH_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        WORKER_CONCURRENCY: String(CONCURRENCY),
        SERVICE_NAME: 'bench',
        // The no-op handler never calls a model; the offline one needs no key and must be named.
        LLM_PROVIDER: 'offline',
      },
    });
    return () => running.close();
  });

/** Milliseconds from flipping the kill switch in one client to another replica seeing it. */
async function killSwitchLatency(samples = 20) {
  const prefix = 'bench-ks';
  const admin = new Redis(redis.url);
  const replica = new Redis(redis.url);
  const ks = await createKillSwitch({ redis: replica, subscriber: replica.duplicate(), prefix });
  const times = [];
  for (let i = 0; i < samples; i++) {
    const on = i % 2 === 0;
    const t0 = performance.now();
    await setKillSwitch(admin, prefix, { tools: on ? ['http.get'] : [] });
    while (ks.blocks('http.get', 'read') !== on) await new Promise((r) => setImmediate(r));
    times.push(performance.now() - t0);
  }
  await ks.close();
  admin.disconnect();
  replica.disconnect();
  return times;
}

try {
  // One pair first, unmeasured: JIT warm-up and Redis' first allocations would otherwise land on
  // whichever side runs first.
  if (process.env.BENCH_ONLY !== 'flotilla') await bare('warm');
  await flotilla('warm');
  const bareRates = [];
  const flotillaRates = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (process.env.BENCH_ONLY === 'flotilla') {
      flotillaRates.push(await flotilla(r));
      continue;
    }
    // Alternate the order so neither side always runs on a warmer Redis.
    if (r % 2 === 0) {
      bareRates.push(await bare(r));
      flotillaRates.push(await flotilla(r));
    } else {
      flotillaRates.push(await flotilla(r));
      bareRates.push(await bare(r));
    }
  }
  if (process.env.BENCH_ONLY === 'flotilla') {
    // Profiling mode: runWorker alone, no ratio.
    console.log(`  runWorker            ${median(flotillaRates).toFixed(0)} jobs/s`);
    process.exitCode = 0;
  } else await report(bareRates, flotillaRates);
} finally {
  admin.disconnect();
  await redis.stop();
}

/** Prints the ratio and kill-switch latency, and writes them into the README when asked. */
async function report(bareRates, flotillaRates) {
  const b = median(bareRates);
  const f = median(flotillaRates);
  // The ratio of each round's pair (run back to back) is steadier than the ratio of the medians
  // when the machine's speed drifts during the run.
  const ratios = bareRates.map((x, i) => flotillaRates[i] / x);
  const ks = await killSwitchLatency();
  const lines = [
    `flotilla bench: ${JOBS} no-op jobs in tasks of ${TASK_SIZE}, concurrency ${CONCURRENCY}, ${ROUNDS} rounds after a warm-up, one Redis${process.env.BENCH_TELEMETRY === '1' ? ', local telemetry' : ''}`,
    `  bare BullMQ Worker   ${b.toFixed(0)} jobs/s (median)`,
    `  runWorker            ${f.toFixed(0)} jobs/s (median)`,
    `  ratio                ${median(ratios).toFixed(2)}x bare BullMQ, median of the rounds' ratios (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)}; goal >= 0.80x)`,
    `  kill switch to another replica: p50 ${median(ks).toFixed(1)} ms, max ${Math.max(...ks).toFixed(1)} ms over ${ks.length} flips (goal < 1000 ms)`,
    `  machine: ${cpus().length} cores, Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}`,
  ];
  for (const l of lines) console.log(l);
  if (!process.argv.includes('--write-readme')) return;
  if (QUICK) console.log('README.md not updated: quick runs are for checking the harness');
  // One fenced run per Node major: the host's Node and the images' Node 24 differ (scripts/bench runs
  // both), and a run replaces only the last one of its own major.
  else
    writeReadmeBlock(
      'bench',
      lines,
      (run) => Number(/Node (\d+)\./.exec(run)?.[1] ?? 0),
      new URL('../docs/bench.md', import.meta.url),
    );
}
