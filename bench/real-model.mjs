// `pnpm bench`, with a real model: the share of a task's wall time spent outside model and tool
// calls, with the pinned Qwen2.5-Coder 0.5B served by llama.cpp on this machine (docs/local-model.md).
// The goal is at most 2%. The fake-vendor figures (bench/flow.mjs) show flotilla's own milliseconds;
// this shows what they come to beside what a task spends waiting on a model a user would run.
//
//   MODEL_FILE=... MODEL_SERVER_PYTHON=... node bench/real-model.mjs [--write-readme]
//
// scripts/bench sets both (the same cache and venv as `pnpm test:model`).
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { freePort, startOtlpReceiver, startProcess, startRedis, stopAll, waitFor } from '@flotilla/devkit';
import { writeReadmeBlock } from './readme.mjs';
import { startStack } from './stack.mjs';
import { coveredMs, median } from './stats.mjs';

const TASKS = Number(process.env.BENCH_MODEL_TASKS ?? 5);
const GOALS = [
  'What is the capital of France? Answer in one word.',
  'What is the chemical symbol of gold? Answer in one word.',
  'How many legs does a spider have? Answer with a number.',
];
/** Spans that are time spent outside flotilla: inside a model call, or inside a tool. */
const isWaitSpan = (name) => name === 'llm.chat' || name.startsWith('tool ');

const { MODEL_FILE, MODEL_SERVER_PYTHON } = process.env;
if (!MODEL_FILE || !MODEL_SERVER_PYTHON) {
  console.error('bench/real-model: set MODEL_FILE and MODEL_SERVER_PYTHON (scripts/bench does)');
  process.exit(2);
}

const logDir = mkdtempSync(join(tmpdir(), 'flotilla-bench-model-'));
const port = await freePort();
const modelUrl = `http://127.0.0.1:${port}`;
const server = startProcess(
  MODEL_SERVER_PYTHON,
  [fileURLToPath(new URL('../compose/model-server/serve.py', import.meta.url))],
  {
    env: {
      MODEL_PATH: MODEL_FILE,
      MODEL_ALIAS: 'qwen2.5-coder-0.5b',
      MODEL_HOST: '127.0.0.1',
      MODEL_PORT: String(port),
      MODEL_THREADS: '2',
      MODEL_CTX: '8192',
    },
  },
);
const redis = await startRedis({ reuse: false });
const collector = await startOtlpReceiver();
let stack;
try {
  await waitFor(async () => (await fetch(`${modelUrl}/health`).catch(() => undefined))?.ok, {
    what: 'the model server healthy',
    timeoutMs: 180_000,
    intervalMs: 250,
  });
  stack = await startStack({
    name: 'model',
    env: {
      REDIS_URL: redis.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      LLM_PROVIDER: 'openai-compatible',
      LLM_BASE_URL: `${modelUrl}/v1`,
      LLM_MODEL: 'qwen2.5-coder-0.5b',
      QUEUE_PREFIX: 'bench-model',
    },
    logDir,
  });
  // One unmeasured task: the model server's first request loads its caches.
  await stack.api.ended(await stack.api.submit(GOALS[0]));
  const runs = [];
  for (let i = 0; i < TASKS; i++) {
    const t0 = performance.now();
    const taskId = await stack.api.submit(GOALS[i % GOALS.length]);
    const end = await stack.api.ended(taskId);
    runs.push({ taskId, end, wallMs: performance.now() - t0 });
  }
  // Stopping the services flushes their spans to the collector.
  stack.api.close();
  await stack.stop();
  stack = undefined;

  const spans = collector.spans();
  const traceOf = new Map(
    spans.filter((s) => s.name === 'task submit').map((s) => [s.attributes['flotilla.task_id'], s.traceId]),
  );
  const measured = runs.flatMap((r) => {
    const waits = spans.filter((s) => s.traceId === traceOf.get(r.taskId) && isWaitSpan(s.name));
    if (waits.length === 0) return [];
    const waitMs = coveredMs(waits.map((s) => [s.startMs, s.endMs]));
    const calls = waits.filter((s) => s.name === 'llm.chat').length;
    return [{ ...r, waitMs, overheadMs: r.wallMs - waitMs, share: (r.wallMs - waitMs) / r.wallMs, calls }];
  });
  const pct = (x) => `${(100 * x).toFixed(2)}%`;
  const lines = [
    `real model: Qwen2.5-Coder 0.5B Q4_K_M, llama.cpp (xllamacpp) on 2 threads; ${measured.length} of ${runs.length} tasks traced (${runs.map((r) => r.end).join(', ')})`,
    `  task wall time, median          ${(median(measured.map((m) => m.wallMs)) / 1000).toFixed(1)} s (${median(measured.map((m) => m.calls))} model calls)`,
    `  outside model and tool calls    median ${pct(median(measured.map((m) => m.share)))}, max ${pct(Math.max(...measured.map((m) => m.share)))} (median ${median(measured.map((m) => m.overheadMs)).toFixed(0)} ms); goal at most 2%`,
    `  machine: ${cpus().length} cores, Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}`,
  ];
  for (const l of lines) console.log(l);
  if (process.argv.includes('--write-readme'))
    writeReadmeBlock('bench-model', lines, () => 0, new URL('../docs/bench.md', import.meta.url));
} finally {
  if (stack) await stack.stop();
  await collector.close();
  await redis.stop();
  await stopAll([server], 10_000);
  rmSync(logDir, { recursive: true, force: true });
}
