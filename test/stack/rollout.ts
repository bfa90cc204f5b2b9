// `flotilla rollout` against the running stack (stack.test.ts calls these while it is up): real canary
// images built from the stack's researcher image, real containers started and removed by Compose, real
// figures from the workers' outcomes through the API. A stream of tasks runs through the whole rollout,
// so both versions see jobs and the test can count that none is lost.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containers, waitFor } from './docker.js';
import { RESEARCHERS } from './setup.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repoRoot, 'packages', 'cli', 'dist', 'main.js');
const baseUrl = () => process.env.STACK_BASE_URL as string;
const version = () => process.env.FLOTILLA_VERSION as string;
const stableImage = () => `flotilla/researcher:${version()}`;
/** The load's tenant: its own rate limit, apart from the key the other tests use. */
const loadKey = () => process.env.STACK_OTHER_API_KEY as string;
const adminKey = () => process.env.STACK_ADMIN_API_KEY as string;

/** A canary image: the stack's researcher with its own SERVICE_VERSION, built offline from stdin. */
function buildCanary(tag: string, env: Record<string, string>): Promise<void> {
  const dockerfile = `FROM ${stableImage()}\nENV ${Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}\n`;
  return new Promise((resolve, reject) => {
    // The classic builder: it takes FROM from the local engine, where BuildKit may ask a registry first.
    const env = { ...process.env, DOCKER_BUILDKIT: '0' };
    const child = execFile('docker', ['build', '-q', '-t', tag, '-'], { timeout: 300_000, env }, (err, _out, stderr) =>
      err ? reject(new Error(`docker build ${tag}: ${stderr || err.message}`)) : resolve(),
    );
    child.stdin?.end(dockerfile);
  });
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built CLI as an operator runs it, output piped (so plain lines, no live redraw). */
function startRollout(args: string[], envFile: string) {
  const child = spawn(process.execPath, [cli, 'rollout', ...args], {
    env: {
      ...process.env,
      FLOTILLA_URL: baseUrl(),
      FLOTILLA_API_KEY: adminKey(),
      FLOTILLA_ROLLOUT_ENV_FILE: envFile,
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 600_000,
  });
  const run = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => {
    run.stdout += d;
  });
  child.stderr.on('data', (d) => {
    run.stderr += d;
  });
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: run.stdout, stderr: run.stderr }));
  });
  return { run, done };
}

const runRollout = (args: string[], envFile: string) => startRollout(args, envFile).done;

async function submitLoad(goal: string): Promise<string> {
  const res = await fetch(`${baseUrl()}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${loadKey()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ goal }),
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { taskId: string }).taskId;
}

/** The load tenant's tasks by id with their status: a few listing requests, not one per task. */
async function statuses(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams({ limit: '100', ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${baseUrl()}/v1/tasks?${q}`, { headers: { authorization: `Bearer ${loadKey()}` } });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { tasks: { taskId: string; status: string }[]; nextCursor: string | null };
    for (const t of page.tasks) out.set(t.taskId, t.status);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/**
 * Runs a rollout while submitting tasks (4 researcher subtasks each) until it exits, then waits for
 * every one of them to end. 1.25 tasks a second stays under the tenant's rate limit (100 a minute).
 */
async function rolloutUnderLoad(args: string[], envFile: string, label: string) {
  const submitted: string[] = [];
  let done = false;
  const run = runRollout(args, envFile).finally(() => {
    done = true;
  });
  for (let i = 0; !done; i++) {
    submitted.push(await submitLoad(`${label} ${i} a; ${label} ${i} b; ${label} ${i} c; ${label} ${i} d`));
    await new Promise((r) => setTimeout(r, 800));
  }
  const result = await run;
  const ended = await waitFor(
    `all ${submitted.length} tasks of ${label} to end`,
    async () => {
      const s = await statuses();
      return submitted.every((id) => ['completed', 'failed', 'cancelled'].includes(s.get(id) ?? '')) ? s : undefined;
    },
    240_000,
    2000,
  );
  return { result, submitted, ended };
}

const researcherImages = async () =>
  (await containers('researcher')).filter((c) => c.State.Running).map((c) => c.Config.Image);

/** Registers the rollout tests; call inside a describe of stack.test.ts, after the tests that need the stable researchers. */
export function rolloutTests() {
  describe('canary rollout (flotilla rollout)', () => {
    let dir: string;
    let envFile: string;
    const bad = () => `${stableImage()}-canary-bad`;
    const good = () => `${stableImage()}-canary-good`;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'flotilla-rollout-'));
      envFile = join(dir, 'rollout.env');
      // The failing image: 30% of its attempts throw (FAULT_INJECT_FAIL_RATIO), so BullMQ retries them.
      await buildCanary(bad(), { SERVICE_VERSION: `${version()}-bad`, FAULT_INJECT_FAIL_RATIO: '0.3' });
      await buildCanary(good(), { SERVICE_VERSION: `${version()}-good` });
    });
    afterAll(async () => {
      rmSync(dir, { recursive: true, force: true });
      // Back to the stack's own kill switch state for whatever runs after.
      await fetch(`${baseUrl()}/v1/admin/kill-switch`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${adminKey()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tools: [], reason: 'stack test: rollout tests done' }),
      });
    });

    it('rolls back a canary that fails 30% of its jobs, turns the named tool off, and loses no task', async () => {
      const { result, submitted, ended } = await rolloutUnderLoad(
        [
          'researcher',
          '--image',
          bad(),
          '--canary',
          '1',
          '--window',
          '20s',
          '--min-jobs',
          '8',
          '--kill-switch-on-fail',
          'http.get',
        ],
        envFile,
        'rollout-bad',
      );
      // The decision line in the suite's output: how close the figures came to the thresholds.
      console.info(`bad canary, ${submitted.length} tasks: ${result.stdout.trim().split('\n').pop()}`);
      expect(result.code, result.stdout + result.stderr).toBe(3);
      // The decision line with its figures; on a pipe, plain progress lines before it.
      expect(result.stdout).toMatch(/^window \d+\/20s: canary \d+ jobs/m);
      const line = /^rolled back: canary error rate (\d\.\d\d) > 0\.05 \(stable 0\.00\), (\d+) canary jobs/m.exec(
        result.stdout,
      );
      expect(line, result.stdout).not.toBeNull();
      expect(Number(line?.[1])).toBeGreaterThan(0.05);
      // The canary is gone; the stable replicas were never touched, and nothing was recorded.
      expect(await researcherImages()).toEqual(Array(RESEARCHERS).fill(stableImage()));
      expect(() => readFileSync(envFile, 'utf8')).toThrow();
      // The kill switch step, with who and why.
      const ks = (await (
        await fetch(`${baseUrl()}/v1/admin/kill-switch`, { headers: { authorization: `Bearer ${adminKey()}` } })
      ).json()) as { tools: string[]; lastChange: { by: string; reason: string } };
      expect(ks.tools).toContain('http.get');
      expect(ks.lastChange.by).toBe('stack-ops');
      expect(ks.lastChange.reason).toMatch(/canary .*-canary-bad of researcher failed/);
      // No task lost: each one submitted during the rollout completed (failed attempts were retried).
      const notCompleted = submitted.filter((id) => ended.get(id) !== 'completed');
      expect(notCompleted, JSON.stringify(notCompleted.map((id) => [id, ended.get(id)]))).toEqual([]);
      expect(submitted.length).toBeGreaterThan(10);
    });

    it('removes the canary on Ctrl-C (SIGINT) and leaves stable serving, untouched', async () => {
      const before = (await containers('researcher')).filter((c) => c.State.Running).map((c) => c.Id);
      const { run, done } = startRollout(['researcher', '--image', good(), '--canary', '1', '--window', '5m'], envFile);
      await waitFor(
        'the canary container to run',
        async () => (await containers('researcher')).some((c) => c.Config.Image === good() && c.State.Running),
        120_000,
        500,
      );
      run.child.kill('SIGINT');
      const result = await done;
      expect(result.code, result.stdout + result.stderr).toBe(130);
      expect(result.stdout).toMatch(/^interrupted: canary removed \(1 replica\(s\)\); \S+ keeps serving$/m);
      // The same stable containers as before, and nothing else.
      const after = await containers('researcher');
      expect(after.map((c) => c.Id).sort()).toEqual([...before].sort());
      expect(after.every((c) => c.State.Running && c.Config.Image === stableImage())).toBe(true);
    });

    it('promotes a good canary: the service recreated on the new image, start-first, recorded for the next up', async () => {
      // --max-p95-ratio 10: the same code on a busy 2-core machine; p95 rules are the unit tests' business.
      const { result, submitted, ended } = await rolloutUnderLoad(
        [
          'researcher',
          '--image',
          good(),
          '--canary',
          '1',
          '--window',
          '20s',
          '--min-jobs',
          '8',
          '--max-p95-ratio',
          '10',
          '--json',
        ],
        envFile,
        'rollout-good',
      );
      expect(result.code, result.stdout + result.stderr).toBe(0);
      console.info(
        `good canary, ${submitted.length} tasks: ${(JSON.parse(result.stdout) as { reason: string }).reason}`,
      );
      const decision = JSON.parse(result.stdout) as {
        outcome: string;
        verdict: string;
        reason: string;
        canary: { jobs: number; errorRate: number; versions: string[] };
        stable: { jobs: number };
        persisted: { variable: string };
      };
      expect(decision).toMatchObject({
        outcome: 'promoted',
        verdict: 'promote',
        persisted: { variable: 'RESEARCHER_IMAGE' },
      });
      expect(decision.canary.versions).toEqual([`${version()}-good`]);
      expect(decision.canary.jobs).toBeGreaterThanOrEqual(8);
      expect(decision.canary.errorRate).toBeLessThanOrEqual(0.05);
      expect(decision.reason).toMatch(/^promoted: canary error rate 0\.0\d <= 0\.05/);
      // The whole service on the new image, at its replica count, healthy; the choice recorded.
      await waitFor('the promoted researchers to be healthy', async () => {
        const cs = (await containers('researcher')).filter((c) => c.State.Running);
        return cs.length === RESEARCHERS && cs.every((c) => c.State.Health?.Status === 'healthy') ? cs : undefined;
      });
      expect(await researcherImages()).toEqual(Array(RESEARCHERS).fill(good()));
      expect(readFileSync(envFile, 'utf8')).toMatch(
        new RegExp(`^RESEARCHER_IMAGE=${good().replace(/[.]/g, '\\.')}$`, 'm'),
      );
      const notCompleted = submitted.filter((id) => ended.get(id) !== 'completed');
      expect(notCompleted).toEqual([]);
      // The new replicas serve: a task submitted now completes on them.
      const after = await submitLoad('after the rollout');
      await waitFor(
        'the task after the rollout',
        async () => (await statuses()).get(after) === 'completed',
        120_000,
        1000,
      );
      // --abort finds nothing to remove once the service runs one image.
      const abort = await runRollout(['researcher', '--abort'], envFile);
      expect(abort.code, abort.stderr).toBe(0);
      expect(abort.stdout).toMatch(
        new RegExp(`${RESEARCHERS} replica\\(s\\) of .*-canary-good serving; no canary left`),
      );
    });
  });
}
