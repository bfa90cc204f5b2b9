import type { TaskEvent, TaskView } from '@flotilla/contracts';
import { startOtlpReceiver } from '@flotilla/devkit';
import { defaultLlmProvider, type Mesh, startMesh } from './mesh.js';
import { taskEvents } from './sse.js';

const SAMPLE_GOAL = [
  'Find out what BullMQ flows are used for',
  'find out how Chroma stores embeddings',
  'write code to compute the first 10 Fibonacci numbers',
].join('; ');

const dim = (s: string) => `\x1b[2m${s}\x1b[22m`;

function describeEvent(e: TaskEvent): string {
  switch (e.type) {
    case 'status':
      return `status      ${e.status}`;
    case 'planned':
      return `planned     ${e.subtasks.length} subtasks: ${e.subtasks.map((s) => `${s.subtaskId}→${s.role}`).join(', ')}`;
    case 'subtask_started':
      return `started     ${e.subtaskId} (${e.role}) on ${e.replica}`;
    case 'subtask_resumed':
      return `resumed     ${e.subtaskId} (${e.role}) on ${e.replica}`;
    case 'approval_requested':
      return `approval?   ${e.subtaskId} wants ${e.tool} ${e.summary} (id ${e.approvalId}, until ${e.deadline})`;
    case 'approval_decided':
      return `approval    ${e.approvalId}: ${e.decision} by ${e.by}`;
    case 'subtask_finished':
      return `finished    ${e.subtaskId} on ${e.replica}: ${e.stopReason} ${dim(`steps ${e.usage.steps}, tool calls ${e.usage.toolCalls}, tokens ${e.usage.tokens}, ${e.usage.ms} ms`)}`;
    case 'completed':
      return `completed   ${e.partial ? '(partial) ' : ''}`;
    case 'failed':
      return `failed      ${e.reason}`;
    case 'cancelled':
      return 'cancelled';
  }
}

/** The workers a mesh runs, in start order: `researcher ×3, coder ×1`. */
function lineup(mesh: Pick<Mesh, 'services'>): string {
  const counts = new Map<string, number>();
  for (const { role } of mesh.services) if (role !== 'orchestrator') counts.set(role, (counts.get(role) ?? 0) + 1);
  return [...counts].map(([role, n]) => `${role} ×${n}`).join(', ') || 'none';
}

/** The sandbox line of the banner: where it runs and who may call it, or why it is not there. */
function sandboxLine(mesh: Pick<Mesh, 'sandbox'>): string {
  return mesh.sandbox
    ? `${mesh.sandbox.url} ${dim('(code.run for the coder; a fresh token for this mesh)')}`
    : 'not running (no worker asks for it)';
}

/** Which model the services use, for the banner. */
const llmLabel = () =>
  defaultLlmProvider(process.env)
    ? 'offline demo model, not AI'
    : (process.env.LLM_PROVIDER ?? 'from your LLM settings');

/** Submits one goal to a running mesh and prints its progress live, then the answer. */
async function runGoal(
  url: string,
  goal: string,
  { token, out = console.log }: { token?: string; out?: (s: string) => void } = {},
) {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(`${url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ goal }),
  });
  if (res.status !== 202) throw new Error(`POST /v1/tasks: HTTP ${res.status} ${await res.text()}`);
  const { taskId } = (await res.json()) as { taskId: string };
  out(`task        ${taskId}`);
  for await (const event of taskEvents(`${url}/v1/tasks/${taskId}/events`, { token })) {
    out(describeEvent(event));
    if (event.type === 'completed' || event.type === 'failed' || event.type === 'cancelled') break;
  }
  const view = (await (await fetch(`${url}/v1/tasks/${taskId}`, { headers: auth })).json()) as TaskView;
  return view;
}

/** `pnpm demo`: the whole mesh on this machine, one sample goal, a clean shutdown (also on Ctrl-C). */
export async function demo(goal = SAMPLE_GOAL): Promise<number> {
  console.log('starting Redis, Chroma, the sandbox, the orchestrator and every worker package…');
  let mesh: Mesh | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      console.log('stopping…');
      await mesh?.stop();
    })();
    return stopping;
  };
  const onSignal = () => {
    void stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // With no collector configured, the demo runs a tiny OTLP receiver of its own so it can show the
  // task's one trace across the orchestrator, the queue hops and the workers.
  const receiver = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? undefined : await startOtlpReceiver();
  try {
    mesh = await startMesh({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? receiver?.url },
    });
    console.log(`orchestrator on ${mesh.url} ${dim(`(LLM: ${llmLabel()})`)}`);
    console.log(`workers     ${lineup(mesh)}`);
    console.log(`sandbox     ${sandboxLine(mesh)}`);
    console.log(`goal        ${goal}`);
    const view = await runGoal(mesh.url, goal);
    console.log(`\n${view.answer ?? view.error ?? '(no answer)'}\n`);
    console.log(
      `status ${view.status}${view.partial ? ' (partial)' : ''} · trace id ${view.traceId ?? '(tracing off)'}`,
    );
    if (receiver && view.traceId) {
      await stop(); // services flush their spans on the way out
      const spans = receiver.spans().filter((s) => s.traceId === view.traceId);
      const services = [...new Set(spans.map((s) => s.service))].sort();
      console.log(`trace       ${spans.length} spans from ${services.join(', ')}`);
    }
    return view.status === 'completed' ? 0 : 1;
  } finally {
    await stop();
    await receiver?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `pnpm dev`: the mesh on :8080 until Ctrl-C. */
export async function dev(port = Number(process.env.PORT ?? 8080)): Promise<void> {
  const mesh = await startMesh({ port, output: 'inherit' });
  console.log(`\nflotilla dev mesh ready: ${mesh.url} (LLM: ${llmLabel()}; workers: ${lineup(mesh)}; Ctrl-C to stop)`);
  console.log(`sandbox: ${sandboxLine(mesh)}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await mesh.stop();
}
