// Orchestration overhead per task: what flotilla adds to a task beyond the time spent waiting for
// the model and the tools, beside the same flow in bare BullMQ. docs/bench.md has the method.
import { performance } from 'node:perf_hooks';
import { startOtlpReceiver } from '@flotilla/devkit';
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
 * Runs `tasks` tasks on every condition (half as many with memory), one task at a time (latency, not
 * load), after `warmup` unmeasured ones, the conditions taking turns task by task so a busy moment of
 * the machine falls on all of them. Returns each condition's tasks: wall time, and for flotilla the
 * time inside model and tool calls (from the services' spans) and the difference, the overhead.
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
    const conditions = [{ label: 'bare', every: 1, run: () => bare.run() }];
    const stacks = [];
    const addStack = async (label, name, extra, every) => {
      const stack = await flotilla(name, extra);
      stacks.push(stack);
      closers.push(() => stack.stop());
      conditions.push({ label, every, run: () => runTask(stack.api) });
    };
    await addStack('flotilla', 'plain', {}, 1);
    // Compose gives every service Chroma memory: the aggregator then stores the answer and notes before
    // the task completes, and the researchers' memory.search queries Chroma. Its tasks take the longest
    // (Chroma's writes), so it takes every other turn: half the tasks, to keep the run near a minute.
    if (chromaUrl) await addStack('memory', 'memory', { CHROMA_URL: chromaUrl }, 2);

    for (let i = 0; i < warmup; i++) for (const c of conditions) await c.run();
    const results = Object.fromEntries(conditions.map((c) => [c.label, []]));
    for (let i = 0; i < tasks; i++) {
      const turn = conditions.filter((c) => i % c.every === 0);
      for (let k = 0; k < turn.length; k++) {
        const c = turn[(i + k) % turn.length];
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

/** Epoch ms, as span times are, with this process's sub-millisecond precision. */
const epochNow = () => performance.timeOrigin + performance.now();

/** One task through the API, timed from the POST until its terminal event arrives on the stream. */
async function runTask(api) {
  const t0 = performance.now();
  const taskId = await api.submit('bench: three questions');
  const end = await api.ended(taskId);
  const wallMs = performance.now() - t0;
  const endEpoch = epochNow();
  if (end !== 'completed') throw new Error(`task ${taskId} ended ${end}: ${JSON.stringify(await api.view(taskId))}`);
  return { wallMs, taskId, startEpoch: endEpoch - wallMs, endEpoch };
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
      return [{ ...run, waitMs, overheadMs: run.wallMs - waitMs, phases: phasesOf(run, list) }];
    });
  }
  return out;
}

/**
 * Where a task's overhead went, between its waits: before the plan's model call (API, plan job,
 * planner), from it to the first subtask's (plan stored, flow added, a researcher takes the job),
 * between the subtasks' calls (the tool loop), from the last subtask's to the aggregation's (results
 * back, fan-in), and after it (answer stored, completed event to the client). The phases add up to
 * the overhead, but each one compares clocks of two processes, and span start times are whole
 * milliseconds (OpenTelemetry JS takes them from Date.now(); durations are precise): read them to
 * about a millisecond. The overhead itself needs positions only where spans overlap, and only the
 * subtasks' do, all in one researcher process.
 */
function phasesOf(run, waits) {
  const orchestrator = waits.filter((s) => s.service.endsWith('-orchestrator')).sort((a, b) => a.startMs - b.startMs);
  const plan = orchestrator[0];
  const aggregate = orchestrator[orchestrator.length - 1];
  const research = waits.filter((s) => !s.service.endsWith('-orchestrator'));
  const from = Math.min(...research.map((s) => s.startMs));
  const to = Math.max(...research.map((s) => s.endMs));
  return {
    plan: plan.startMs - run.startEpoch,
    dispatch: from - plan.endMs,
    subtasks: to - from - coveredMs(research.map((s) => [s.startMs, s.endMs])),
    fanIn: aggregate.startMs - to,
    finish: run.endEpoch - aggregate.endMs,
  };
}
