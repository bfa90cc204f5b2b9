// Orchestration overhead per task: what flotilla adds to a task beyond the time spent waiting for
// the model and the tools, beside the same flow in bare BullMQ. docs/bench.md has the method.
import { performance } from 'node:perf_hooks';
import { startOtlpReceiver } from '@flotilla/test-utils';
import { startBareFlow } from './bare-flow.mjs';
import { modelEnv, startBenchModel } from './model.mjs';
import { startStack } from './stack.mjs';
import { coveredMs } from './stats.mjs';

/** Jobs one researcher replica runs at once: all three subtasks of a task start together, as the bare flow's children do. */
const CHILD_CONCURRENCY = 3;
/** Per task: the plan, two turns per researcher (tool call, answer), the final answer. */
const EXPECTED = { llm: 1 + 3 * 2 + 1, tools: 3 };
/** Spans that are time spent outside flotilla: inside a model call, or inside a tool. */
const isWaitSpan = (name) => name === 'llm.chat' || name.startsWith('tool ');

/**
 * Runs `tasks` tasks on every condition, one task at a time (latency, not load), after `warmup`
 * unmeasured ones, the conditions taking turns task by task so a busy moment of the machine falls
 * on all of them. Returns each condition's tasks: wall time, and for flotilla the time inside
 * model and tool calls (from the services' spans) and the difference, the overhead.
 */
export async function measureOverhead({ redisUrl, chromaUrl, tasks, warmup, logDir }) {
  const vendor = await startBenchModel({ toolCall: true });
  // What Compose runs beside the services: a collector. Its spans are how the model's time is known.
  const collector = await startOtlpReceiver();
  const env = {
    REDIS_URL: redisUrl,
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    ...modelEnv(vendor),
  };
  const flotilla = (name, extra) =>
    startStack({
      name,
      env: { ...env, ...extra, QUEUE_PREFIX: `bench-${name}` },
      // The API's per-client rate limit is for the public, not for one client submitting a few thousand tasks.
      orchestratorEnv: { RATE_LIMIT_MAX: '1000000000' },
      researcherEnv: { WORKER_CONCURRENCY: String(CHILD_CONCURRENCY) },
      logDir,
    });

  const closers = [];
  try {
    const bare = await startBareFlow(redisUrl, { childConcurrency: CHILD_CONCURRENCY });
    closers.push(() => bare.close());
    const conditions = [{ label: 'bare', run: () => bare.run() }];
    const stacks = [];
    const addStack = async (label, name, extra) => {
      const stack = await flotilla(name, extra);
      stacks.push(stack);
      closers.push(() => stack.stop());
      conditions.push({ label, run: () => runTask(stack.api) });
    };
    await addStack('flotilla', 'plain', {});
    // Compose gives every service Chroma memory: the aggregator then stores the answer and notes before
    // the task completes, and the researchers' memory.search queries Chroma.
    if (chromaUrl) await addStack('memory', 'memory', { CHROMA_URL: chromaUrl });

    for (let i = 0; i < warmup; i++) for (const c of conditions) await c.run();
    const results = Object.fromEntries(conditions.map((c) => [c.label, []]));
    for (let i = 0; i < tasks; i++) {
      for (let k = 0; k < conditions.length; k++) {
        const c = conditions[(i + k) % conditions.length];
        results[c.label].push(await c.run());
      }
    }

    // Stopping the services flushes their spans to the collector (the last shutdown step): after
    // this, every span of every task has arrived.
    for (const stack of stacks) {
      stack.api.close();
      await stack.stop();
    }
    return subtractWaits(results, collector.spans());
  } finally {
    for (const close of closers.reverse()) await close();
    await collector.close();
    await vendor.close();
  }
}

/** One task through the API, timed from the POST until its terminal event arrives on the stream. */
async function runTask(api) {
  const t0 = performance.now();
  const taskId = await api.submit('bench: three questions');
  const end = await api.ended(taskId);
  const wallMs = performance.now() - t0;
  if (end !== 'completed') throw new Error(`task ${taskId} ended ${end}: ${JSON.stringify(await api.view(taskId))}`);
  return { wallMs, taskId };
}

/**
 * Adds to each flotilla task the time covered by its model and tool spans, found through its trace
 * (the `task submit` span names the task; the plan job, the subtasks and the aggregation join the
 * trace through BullMQ and the envelopes). A task whose spans are not all there is left out and
 * counted, rather than credited with less waiting than it did.
 */
function subtractWaits(results, spans) {
  const traceOf = new Map();
  const waits = new Map();
  for (const s of spans) {
    if (s.name === 'task submit') traceOf.set(s.attributes['flotilla.task_id'], s.traceId);
    else if (isWaitSpan(s.name)) {
      const list = waits.get(s.traceId) ?? [];
      list.push(s);
      waits.set(s.traceId, list);
    }
  }
  const out = { bare: results.bare, incomplete: 0 };
  for (const [label, runs] of Object.entries(results)) {
    if (label === 'bare') continue;
    out[label] = runs.flatMap((run) => {
      const list = waits.get(traceOf.get(run.taskId)) ?? [];
      const llm = list.filter((s) => s.name === 'llm.chat').length;
      if (llm !== EXPECTED.llm || list.length - llm !== EXPECTED.tools) {
        out.incomplete++;
        return [];
      }
      const waitMs = coveredMs(list.map((s) => [s.startMs, s.endMs]));
      return [{ ...run, waitMs, overheadMs: run.wallMs - waitMs }];
    });
  }
  return out;
}
