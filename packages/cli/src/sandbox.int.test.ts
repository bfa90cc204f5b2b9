// End to end through the sandbox: a goal goes planner -> coder -> sandbox -> aggregator over real
// processes (the mesh from dist/, real Redis, Chroma and the real sandbox under bubblewrap). Only
// the model is scripted, by a fake OpenAI-compatible server, because what is under test is the
// wiring a unit test cannot see: the mesh hands the coder the sandbox's URL and a token made for it,
// code.run is on the coder's allowlist, the token is accepted, and the run's output travels back up
// the flow into the answer.
import { readFileSync } from 'node:fs';
import type { TaskView } from '@flotilla/contracts';
import { fakeReply, type RecordedRequest, startFakeOpenAI, uniquePrefix, waitFor } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Mesh, startMesh } from './mesh.js';

const GOAL = 'compute the 30th Fibonacci number with code';

/**
 * A real program, with no 832040 in it: the number can only appear once python has run it. The
 * goal, the plan and the code do not hold it either, and the fake's answer below is built from the
 * run's stdout alone, so a sandbox that did not run the code (or a coder that never called it)
 * leaves the number out of the answer and the assertion fails. That is why this file needs no
 * separate control case.
 */
const FIB_PY = ['a, b = 0, 1', 'for _ in range(30):', '    a, b = b, a + b', 'print(a)', ''].join('\n');

interface ChatBody {
  messages?: { role: string; content?: unknown }[];
  response_format?: { json_schema?: { name?: string } };
}

/** The aggregator's prompt holds `- s1 (coder): <the coder's output as JSON>`; its run's stdout. */
function coderStdout(prompt: string): string | undefined {
  const line = prompt.split('\n').find((l) => l.startsWith('- s1 (coder): '));
  if (!line) return undefined;
  try {
    const output = JSON.parse(line.slice('- s1 (coder): '.length)) as { run?: { stdout?: unknown } };
    return typeof output.run?.stdout === 'string' ? output.run.stdout.trim() : undefined;
  } catch {
    return undefined; // truncated or not JSON: no number
  }
}

/**
 * The model of every service: the planner's request (structured output `plan`) gets one coder
 * subtask; the coder's (structured output `code`) gets the program; the aggregator's (plain text,
 * with the subtask results) gets an answer quoting what the run printed.
 */
function model(req: RecordedRequest) {
  const body = (req.body ?? {}) as ChatBody;
  const format = body.response_format?.json_schema?.name;
  if (format === 'plan') {
    return fakeReply.json({ subtasks: [{ role: 'coder', input: { task: GOAL, language: 'python' } }] });
  }
  if (format === 'code') return fakeReply.json({ language: 'python', code: FIB_PY });
  const prompt = (body.messages ?? []).map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
  if (prompt.includes('Subtask results:')) {
    const stdout = coderStdout(prompt);
    return fakeReply.text(stdout ? `The 30th Fibonacci number is ${stdout}.` : 'The code did not run.');
  }
  return undefined;
}

describe('a coding goal through the sandbox', () => {
  let mesh: Mesh;
  let llm: Awaited<ReturnType<typeof startFakeOpenAI>>;

  beforeAll(async () => {
    llm = await startFakeOpenAI(model);
    mesh = await startMesh({
      only: ['coder'],
      env: {
        LLM_PROVIDER: 'openai-compatible',
        LLM_BASE_URL: llm.url,
        LLM_MODEL: 'fib-fake',
        LLM_API_KEY: 'sk-test-fib-key-0000',
        QUEUE_PREFIX: uniquePrefix('sandbox-e2e'),
        SHUTDOWN_GRACE_MS: '5000',
      },
    });
  }, 120_000);

  afterAll(async () => {
    await mesh?.stop();
    await llm?.close();
  }, 60_000);

  it('plans a coder subtask, runs its program in the real sandbox and answers with the output', async () => {
    expect(mesh.sandbox?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${mesh.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ goal: GOAL }),
    });
    expect(res.status).toBe(202);
    const { taskId } = (await res.json()) as { taskId: string };
    const view = await waitFor(
      async () => {
        const v = (await (await fetch(`${mesh.url}/v1/tasks/${taskId}`)).json()) as TaskView;
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
      },
      { what: 'task to end', timeoutMs: 60_000, intervalMs: 100 },
    );

    expect(view.error).toBeUndefined();
    expect(view.status).toBe('completed');
    expect(view.subtasks).toHaveLength(1);
    expect(view.subtasks[0]).toMatchObject({ role: 'coder', state: 'completed', stopReason: 'finish' });
    expect(view.answer).toContain('832040');
    // The sandbox itself counted the run as ok: the coder reached it with the mesh's token.
    const metrics = await (await fetch(`${mesh.sandbox?.url}/metrics`)).text();
    const okRuns = metrics
      .split('\n')
      .find(
        (l) =>
          l.startsWith('flotilla_sandbox_runs_total{') && l.includes('language="python"') && l.includes('outcome="ok"'),
      );
    expect(Number(okRuns?.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
    // The mesh's token, read where the mesh put it (the sandbox's environment), is in no service's log.
    const environ = readFileSync(`/proc/${mesh.sandbox?.proc.child.pid}/environ`, 'utf8').split('\0');
    const token = environ.find((v) => v.startsWith('SANDBOX_TOKEN='))?.slice('SANDBOX_TOKEN='.length);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    for (const svc of [...mesh.services, ...(mesh.sandbox ? [mesh.sandbox] : [])]) {
      expect(`${svc.proc.stdout()}${svc.proc.stderr()}`.includes(token as string), svc.name).toBe(false);
    }
  }, 90_000);
});
