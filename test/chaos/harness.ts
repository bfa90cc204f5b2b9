// Shared parts of the chaos suite: the counting server the chaos worker writes to, the orchestrator and
// chaos worker processes (built dist/ entry points, as the images run them), task submission, and the
// figures file the README block is written from.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { TaskView } from '@flotilla/contracts';
import { freePort, type RunningProcess, startProcess, waitFor } from '@flotilla/test-utils';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
export const chaosWorkerEntry = here('../../packages/runtime/dist/worker/fixtures/chaos-worker.js');
export const orchestratorDir = here('../../packages/orchestrator');
const researcherDir = here('../../packages/researcher');
export const FIGURES_FILE = here('./figures.json');

/** A number from the environment (the suite's scale knobs), or the default. */
export function knob(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/**
 * The far side of the idempotent write tool: it applies a write once per Idempotency-Key (as a payment
 * API does) and counts what it saw, so "exactly once" is its figures, not the workers' word.
 */
export async function startCounter() {
  const applied = new Map<string, number>(); // text -> effects applied
  const byKey = new Map<string, string>(); // idempotency key -> text
  let requests = 0;
  let missingKey = 0;
  let failNext = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/write') return res.writeHead(404).end();
      requests++;
      if (failNext > 0) {
        failNext--;
        return res.writeHead(503).end();
      }
      const key = req.headers['idempotency-key'];
      const { text } = JSON.parse(body) as { text: string };
      if (typeof key !== 'string' || key === '') missingKey++;
      const seen = typeof key === 'string' && key !== '' && byKey.has(key);
      if (!seen) {
        if (typeof key === 'string' && key !== '') byKey.set(key, text);
        applied.set(text, (applied.get(text) ?? 0) + 1);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ applied: !seen }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Effects applied per write text. */
    applied,
    /** Requests that reached the server (duplicates the far side deduplicated included). */
    requests: () => requests,
    missingKey: () => missingKey,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Service {
  name: string;
  healthUrl: string;
  proc: RunningProcess;
  startedAt: number;
}

export async function waitForReady(svc: Service, timeoutMs = 90_000) {
  let exit: number | NodeJS.Signals | undefined;
  void svc.proc.exited.then((code) => {
    exit = code;
  });
  await waitFor(
    async () => {
      if (exit !== undefined) throw new Error(`${svc.name} exited with ${exit}: ${svc.proc.stderr().slice(-2000)}`);
      try {
        return (await fetch(`${svc.healthUrl}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
      } catch {
        return false;
      }
    },
    { what: `${svc.name} ready`, timeoutMs, intervalMs: 100 },
  );
  return svc;
}

/** Environment every service of the suite shares. */
export function sharedEnv(redisUrl: string, prefix: string, chromaUrl?: string): Record<string, string | undefined> {
  return {
    REDIS_URL: redisUrl,
    CHROMA_URL: chromaUrl,
    QUEUE_PREFIX: prefix,
    LLM_PROVIDER: 'offline',
    LOG_LEVEL: 'warn',
    // Loopback only; never through the machine's proxy.
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
}

export async function startOrchestrator(env: Record<string, string | undefined>, name = 'orchestrator') {
  const port = await freePort();
  const proc = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
    cwd: orchestratorDir,
    env: {
      SERVICE_NAME: 'orchestrator',
      PORT: String(port),
      HEALTH_PORT: String(port),
      HEALTH_HOST: '127.0.0.1',
      AUTH: 'off',
      RATE_LIMIT_MAX: '1000000',
      TENANT_MAX_OPEN_TASKS: '100000',
      REPLICA_ID: name,
      ...env,
    },
  });
  const svc = { name, healthUrl: `http://127.0.0.1:${port}`, proc, startedAt: Date.now() };
  return { ...(await waitForReady(svc)), url: svc.healthUrl };
}

export async function startChaosWorker(name: string, env: Record<string, string | undefined>, ready = true) {
  const port = await freePort();
  const proc = startProcess(process.execPath, [chaosWorkerEntry], {
    env: { SERVICE_NAME: 'chaos', HEALTH_PORT: String(port), HEALTH_HOST: '127.0.0.1', REPLICA_ID: name, ...env },
  });
  const svc: Service = { name, healthUrl: `http://127.0.0.1:${port}`, proc, startedAt: Date.now() };
  return ready ? waitForReady(svc) : svc;
}

/**
 * A real researcher (its built entry point, as the image runs it) whose model is played by a fake
 * OpenAI-compatible server at `llmUrl`. Waits for it to be ready.
 */
export async function startResearcher(name: string, llmUrl: string, env: Record<string, string | undefined>) {
  const port = await freePort();
  const proc = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
    cwd: researcherDir,
    env: {
      ...env,
      SERVICE_NAME: 'researcher',
      HEALTH_PORT: String(port),
      HEALTH_HOST: '127.0.0.1',
      REPLICA_ID: name,
      // After `env`: sharedEnv's offline model is the orchestrator's, not this researcher's.
      LLM_PROVIDER: 'openai-compatible',
      LLM_BASE_URL: llmUrl,
      LLM_MODEL: 'played',
      LLM_API_KEY: 'sk-test-played-model-000',
    },
  });
  return waitForReady({ name, healthUrl: `http://127.0.0.1:${port}`, proc, startedAt: Date.now() });
}

/** POST /v1/tasks; returns the task id of an accepted (202) task. */
export async function submit(base: string, goal: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`${base}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ goal, ...extra }),
  });
  if (res.status !== 202) throw new Error(`POST /v1/tasks answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { taskId: string }).taskId;
}

export const getTask = async (base: string, id: string) =>
  (await (await fetch(`${base}/v1/tasks/${id}`)).json()) as TaskView;

export const ended = (v: TaskView) => ['completed', 'failed', 'cancelled'].includes(v.status);

/** Waits until task `id` has ended and returns its view. */
export const settled = (base: string, id: string, timeoutMs: number, intervalMs = 250) =>
  waitFor(
    async () => {
      const v = await getTask(base, id);
      return ended(v) ? v : undefined;
    },
    { what: `task ${id} to end`, timeoutMs, intervalMs },
  );

/**
 * Teardown steps a test file collects (servers, processes, queues), run last-first by `hook`
 * (afterAll, or afterEach for per-test stacks), each one's failure ignored so the rest still run.
 */
export function teardown(hook: (fn: () => Promise<void>, timeoutMs: number) => void): (() => Promise<unknown>)[] {
  const steps: (() => Promise<unknown>)[] = [];
  hook(async () => {
    for (const step of steps.splice(0).reverse()) await step().catch(() => undefined);
  }, 120_000);
  return steps;
}

/** Nearest-rank percentile of `xs` (0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** Merges one part's figures into figures.json (each test file owns its key). */
export function recordFigures(part: string, figures: Record<string, unknown>) {
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(FIGURES_FILE, 'utf8')) as Record<string, unknown>;
  } catch {
    // first part of this run
  }
  all[part] = { ...figures, at: new Date().toISOString() };
  mkdirSync(here('.'), { recursive: true });
  writeFileSync(FIGURES_FILE, `${JSON.stringify(all, null, 2)}\n`);
}
