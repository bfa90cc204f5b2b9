// A real model through the whole mesh: the 0.5B Qwen2.5-Coder served by llama.cpp (xllamacpp) on
// this machine, the orchestrator, the coder and the sandbox as processes on real Redis and Chroma.
// Fake vendor servers prove the provider speaks the protocol; only a real model shows whether a plan,
// a tool call and an answer come out of what models actually write. scripts/test-model sets it up.
//
// A 0.5B model is not a reliable agent, so this asserts only what it does at temperature 0 with a
// fixed seed: a plan, at least one tool call, a completed task. Every failure says whose it is:
// "model" (what the model wrote was unusable), or "flotilla" (the mesh mishandled usable output).
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeTaskEventEntry, redisKeys, type TaskEvent, type TaskView } from '@flotilla/contracts';
import { freePort, type RunningProcess, startProcess, stopAll, waitFor } from '@flotilla/devkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Mesh, startMesh } from '../../packages/cli/src/mesh.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const MODEL_FILE = process.env.MODEL_FILE ?? '';
const MODEL_SERVER_PYTHON = process.env.MODEL_SERVER_PYTHON ?? '';
const THREADS = process.env.MODEL_THREADS ?? '2';

/** What a failure message starts with: whose fault it is, so nobody debugs flotilla for a model's slip. */
const fault = (who: 'model' | 'flotilla', what: string) => `[${who} fault] ${what}`;

/** The part of a Chat Completions answer this test reads. */
interface Completion {
  choices?: { message?: { content?: string; tool_calls?: { function: { name: string } }[] } }[];
}

async function chat(base: string, body: Record<string, unknown>) {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'local', temperature: 0, seed: 42, max_tokens: 96, ...body }),
  });
  return { status: res.status, json: (await res.json()) as Completion };
}

/** serve.py on loopback, as the image runs it; resolves once llama.cpp's /health answers 200. */
async function startModelServer(env: Record<string, string> = {}): Promise<{ proc: RunningProcess; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(MODEL_SERVER_PYTHON, [`${repoRoot}compose/model-server/serve.py`], {
    env: {
      MODEL_PATH: MODEL_FILE,
      MODEL_HOST: '127.0.0.1',
      MODEL_PORT: String(port),
      MODEL_THREADS: THREADS,
      MODEL_CTX: '8192',
      ...env,
    },
  });
  let exit: number | NodeJS.Signals | undefined;
  void proc.exited.then((code) => {
    exit = code;
  });
  await waitFor(
    async () => {
      if (exit !== undefined) throw new Error(`model server exited with ${exit}: ${proc.stderr().slice(-2000)}`);
      return (await fetch(`${url}/health`)).ok;
    },
    { what: 'the model server healthy', timeoutMs: 120_000, intervalMs: 250 },
  );
  return { proc, url };
}

/** A request whose answer needs a tool: what the template check and its control send. */
const TOOL_REQUEST = {
  messages: [{ role: 'user', content: 'Compute 17*23 by running Python code.' }],
  tools: [
    {
      type: 'function',
      function: {
        name: 'code_run',
        description: 'Run a Python program and return what it prints.',
        parameters: { type: 'object', properties: { code: { type: 'string' } }, required: ['code'] },
      },
    },
  ],
};

describe('a real local model (0.5B) through the mesh', () => {
  let server: RunningProcess;
  let modelUrl: string;
  let mesh: Mesh;
  let redis: Redis;

  beforeAll(async () => {
    if (!existsSync(MODEL_FILE) || !existsSync(MODEL_SERVER_PYTHON)) {
      throw new Error('MODEL_FILE and MODEL_SERVER_PYTHON must name files: run this through `pnpm test:model`');
    }
    ({ proc: server, url: modelUrl } = await startModelServer());
  });

  afterAll(async () => {
    redis?.disconnect();
    await mesh?.stop();
    if (server) await stopAll([server], 10_000);
  }, 60_000);

  it('the shipped chat template turns what the model writes into tool_calls', async () => {
    // The model alone, before the mesh: if this fails, the template or the model is at fault, not flotilla.
    const { status, json } = await chat(modelUrl, TOOL_REQUEST);
    expect(status, fault('model', `the model server answered ${status}: ${JSON.stringify(json)}`)).toBe(200);
    const calls = json.choices?.[0]?.message?.tool_calls ?? [];
    expect(
      calls.map((c) => c.function.name),
      fault('model', `no tool_calls parsed from: ${JSON.stringify(json.choices?.[0]?.message)}`),
    ).toContain('code_run');
  });

  it("control: with the GGUF's own template the same request gets no tool_calls", async () => {
    // Proves the check above can fail, and why the template ships: the model writes the call as a JSON
    // code block, not in the <tool_call> tags its own template asks for, so llama.cpp finds no call.
    const own = await startModelServer({ CHAT_TEMPLATE_FILE: '', MODEL_CTX: '2048' });
    try {
      const { status, json } = await chat(own.url, TOOL_REQUEST);
      expect(status).toBe(200);
      expect(json.choices?.[0]?.message?.tool_calls ?? []).toEqual([]);
      expect(json.choices?.[0]?.message?.content).toContain('code_run');
    } finally {
      await stopAll([own.proc], 10_000);
    }
  });

  it('plans a goal, calls a tool through the gateway, and answers', async () => {
    mesh = await startMesh({
      only: ['coder'],
      replicas: { coder: 1 },
      env: {
        LLM_PROVIDER: 'openai-compatible',
        LLM_BASE_URL: modelUrl,
        LLM_MODEL: 'local',
        LLM_MAX_TOKENS: '512',
        // One slot on the server: a call waits for the one before it; failures are the model's, not the network's.
        LLM_MAX_RETRIES: '1',
        WORKER_CONCURRENCY: '1',
        SHUTDOWN_GRACE_MS: '5000',
      },
    });
    redis = new Redis(mesh.redisUrl);
    const started = Date.now();
    const res = await fetch(`${mesh.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        goal: 'Write and run a Python program that prints 17 * 23 + 4. Report the number it prints.',
        idempotencyKey: `model-smoke-${randomUUID()}`,
      }),
    });
    expect(res.status, fault('flotilla', `POST /v1/tasks answered ${res.status}`)).toBe(202);
    const { taskId } = (await res.json()) as { taskId: string };

    const view = await waitFor(
      async () => {
        const v = (await (await fetch(`${mesh.url}/v1/tasks/${taskId}`)).json()) as TaskView;
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
      },
      { what: `task ${taskId} to end`, timeoutMs: 240_000, intervalMs: 500 },
    );
    const events = (await redis.xrange(redisKeys(mesh.prefix).taskEvents(taskId), '-', '+'))
      .map(([, fields]) => decodeTaskEventEntry(fields))
      .filter((e): e is TaskEvent => e !== undefined);
    const story = JSON.stringify({ status: view.status, error: view.error, subtasks: view.subtasks }, null, 1);
    console.log(`model smoke: task ${view.status} in ${Date.now() - started} ms\n${story}\nanswer: ${view.answer}`);

    // A plan: the planner's JSON (schema-constrained by the server) named a live role.
    const planned = events.find((e) => e.type === 'planned');
    expect(
      planned?.subtasks.length,
      view.error?.startsWith('plan_invalid')
        ? fault('model', `its plans were rejected twice: ${view.error}`)
        : fault('flotilla', `no plan event; task: ${story}`),
    ).toBeGreaterThan(0);

    // A tool call: the coder's code.run went through the gateway to the sandbox.
    const toolCalls = events
      .filter((e) => e.type === 'subtask_finished')
      .reduce((n, e) => n + (e.type === 'subtask_finished' ? e.usage.toolCalls : 0), 0);
    const noCode = view.subtasks.find((s) => s.error?.startsWith('model returned no usable code'));
    expect(
      toolCalls,
      noCode
        ? fault('model', `the coder's draft was unusable: ${noCode.error}`)
        : fault('flotilla', `no tool call; ${story}`),
    ).toBeGreaterThan(0);

    // An answer: the task completed with the aggregator's text.
    expect(view.status, fault('flotilla', `the task did not complete; ${story}`)).toBe('completed');
    expect(view.answer?.trim(), fault('model', 'the aggregator wrote an empty answer')).toBeTruthy();
    expect(events.some((e) => e.type === 'completed')).toBe(true);
  });
});
