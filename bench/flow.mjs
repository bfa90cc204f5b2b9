// `pnpm bench`, second part: the figures a user of the whole system feels, measured on real service
// processes (orchestrator, researchers) against a real Redis: orchestration overhead per task beside a
// bare BullMQ flow of the same shape, and tasks/s as researcher replicas are added. Not a test: nothing
// passes or fails; the README quotes a run. Method: docs/bench.md.
//
//   node bench/flow.mjs [--quick] [--write-readme]
//
// scripts/bench runs it once, on the Node the images run: the services are what is measured, and
// that is the Node they run on in production.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChroma, startRedis } from '@flotilla/devkit';
import { Redis } from 'ioredis';
import { measureOverhead } from './overhead.mjs';
import { writeReadmeBlock } from './readme.mjs';
import { measureScaling } from './scaling.mjs';
import { ms, percentile } from './stats.mjs';

const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
// 400 sequential tasks per condition give a p99 from the 5 slowest, in about a minute here; the
// quick mode is for checking the harness, not for quoting.
const TASKS = Number(process.env.BENCH_TASKS ?? (QUICK ? 60 : 400));
const WARMUP = QUICK ? 10 : 30;
// Completions counted per replica count: 60 keeps one task's worth of jitter under 2% of the rate.
const SCALE_TASKS = Number(process.env.BENCH_SCALE_TASKS ?? (QUICK ? 15 : 60));
const MAX_REPLICAS = 4;

// BENCH_ONLY=overhead or =scaling runs one half (development); such a run never writes the README.
const ONLY = process.env.BENCH_ONLY;

const logDir = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
const redis = await startRedis({ reuse: false });
// As bench/run.mjs: AOF on, as in production, but no rewrite forking Redis in the middle of a run.
const admin = new Redis(redis.url);
await admin.config('SET', 'auto-aof-rewrite-percentage', '0');
admin.disconnect();
// Compose gives the services Chroma memory; without a Chroma here (BENCH_MEMORY=0, or none installed)
// the memory condition is left out and the report says so.
const chroma =
  process.env.BENCH_MEMORY === '0' || ONLY === 'scaling'
    ? undefined
    : await startChroma({ reuse: false }).catch((err) => {
        console.error(`bench: no Chroma, so no memory condition (${err.message.split('\n')[0]})`);
        return undefined;
      });

let failed = true;
try {
  const lines = [];
  if (ONLY !== 'scaling') {
    const overhead = await measureOverhead({
      redisUrl: redis.url,
      chromaUrl: chroma?.url,
      tasks: TASKS,
      warmup: WARMUP,
      logDir,
    });
    lines.push(...overheadLines(overhead));
  }
  if (ONLY !== 'overhead') {
    const scaling = await measureScaling({
      redisUrl: redis.url,
      maxReplicas: MAX_REPLICAS,
      tasks: SCALE_TASKS,
      warmup: WARMUP,
      logDir,
    });
    lines.push(...scalingLines(scaling));
  }
  lines.push(
    `  machine: ${cpus().length} cores, Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}`,
  );
  for (const l of lines) console.log(l);
  if (process.argv.includes('--write-readme')) {
    if (QUICK || ONLY) console.log('README.md not updated: quick and partial runs are for checking the harness');
    else writeReadmeBlock('bench-flow', lines, () => 0, new URL('../docs/bench.md', import.meta.url));
  }
  failed = false;
} finally {
  await chroma?.stop();
  await redis.stop();
  // The services' logs stay when something went wrong: that is when someone reads them.
  if (failed) console.error(`service logs kept in ${logDir}`);
  else rmSync(logDir, { recursive: true, force: true });
}

function overheadLines(overhead) {
  const bare = overhead.bare.map((r) => r.wallMs);
  const bareP50 = percentile(bare, 50);
  const p50 = (runs, f) => percentile(runs.map(f), 50);
  const row = (label, runs) => {
    const o = runs.map((r) => r.overheadMs);
    const phase = (name) => p50(runs, (r) => r.phases[name]).toFixed(1);
    const wall = ms(p50(runs, (r) => r.wallMs));
    const waits = ms(p50(runs, (r) => r.waitMs));
    return [
      `  ${label.padEnd(24)} overhead p50 ${ms(percentile(o, 50))}, p99 ${ms(percentile(o, 99))} ` +
        `(wall p50 ${wall} minus model and tools p50 ${waits}): ${(percentile(o, 50) / bareP50).toFixed(2)}x bare p50 (goal <= 1.5x)`,
      `  ${''.padEnd(24)} where, p50 ms: to plan call ${phase('plan')}, to subtasks ${phase('dispatch')}, ` +
        `in subtasks ${phase('subtasks')}, to aggregate call ${phase('fanIn')}, to completed ${phase('finish')}`,
    ];
  };
  return [
    `flotilla bench (orchestration): API -> plan -> 3 researcher subtasks (a tool call each) -> aggregate, real processes, one Redis`,
    `  overhead per task, ${TASKS} sequential tasks per condition (${Math.ceil(TASKS / 2)} with memory) after ${WARMUP} warm-up, taking turns; model and tools answer at once`,
    `  bare BullMQ flow         p50 ${ms(bareP50)}, p95 ${ms(percentile(bare, 95))}, p99 ${ms(percentile(bare, 99))} (plan job -> flow of 3 no-op children -> parent done)`,
    ...row('flotilla', overhead.flotilla),
    ...(overhead.memory
      ? row('flotilla + Chroma memory', overhead.memory)
      : ['  (no Chroma: memory condition not run)']),
    ...(overhead.incomplete ? [`  ${overhead.incomplete} task(s) left out: their spans did not all arrive`] : []),
  ];
}

function scalingLines(scaling) {
  const steps = scaling.steps
    .map((s) => `${s.replicas}: ${s.tasksPerSecond.toFixed(2)}/s ${(s.efficiency * 100).toFixed(0)}%`)
    .join(', ');
  const idle = Math.max(...scaling.steps.map((s) => s.queueEmptyShare));
  const failures = scaling.steps.reduce((n, s) => n + s.failed, 0);
  return [
    `  scaling, --scale researcher=N, every model call ${scaling.modelMs} ms, ${scaling.concurrency} jobs per replica, ${scaling.inFlightPerReplica}N tasks in flight, rate over ${SCALE_TASKS} tasks:`,
    `    tasks/s and efficiency vs linear (goal >= 90% at 3) ${steps}`,
    `    researcher queue empty in ${(idle * 100).toFixed(0)}% of samples at worst${failures ? `; ${failures} task(s) did not complete` : ''}`,
  ];
}
