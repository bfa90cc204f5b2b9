// What `flotilla new-worker` promises only shows in a real checkout: the package it writes installs,
// type-checks and passes its own tests, and the local mesh discovers it and gives it work. So this
// scaffolds a worker into a temporary copy of the repository, installs and builds it there with the
// real pnpm and tsc, runs its generated tests with vitest, and starts the mesh from that copy, on the
// offline model, against the run's Redis and Chroma.
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TaskEvent } from '@flotilla/contracts';
import { uniquePrefix } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Mesh, startMesh } from './mesh.js';
import { newWorker, repoRoot } from './scaffold.js';
import { taskEvents } from './sse.js';

const exec = promisify(execFile);

/**
 * The repository as a fresh clone plus this checkout's builds: every file git would commit (tracked
 * and new, ignored ones left out) and each package's dist/, timestamps kept so `tsc -b` finds the
 * existing packages up to date and builds only the new one.
 */
function copyRepo(): string {
  const root = mkdtempSync(join(tmpdir(), 'flotilla-scaffold-'));
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    // Listed but deleted in the working tree: a clone of what is here would not have it either.
    if (existsSync(join(repoRoot, file))) cpSync(join(repoRoot, file), join(root, file), { preserveTimestamps: true });
  }
  for (const pkg of readdirSync(join(repoRoot, 'packages'))) {
    const dist = join(repoRoot, 'packages', pkg, 'dist');
    if (existsSync(dist)) {
      cpSync(dist, join(root, 'packages', pkg, 'dist'), { recursive: true, preserveTimestamps: true });
    }
  }
  return root;
}

/** Runs a command in the copy; a failure carries the command's output, which is what one needs to see. */
async function sh(cwd: string, command: string, args: string[]): Promise<string> {
  // A nested vitest must not take itself for one of this run's workers; plain output to match on.
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST'))),
    NO_COLOR: '1',
    FORCE_COLOR: '0',
  };
  try {
    const { stdout, stderr } = await exec(command, args, { cwd, env, timeout: 120_000, maxBuffer: 16 << 20 });
    return `${stdout}${stderr}`;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${`${stdout}\n${stderr}`.slice(-6000)}`);
  }
}

/** Submits a goal and collects the task's events until it ends. */
async function eventsOf(mesh: Mesh, goal: string): Promise<TaskEvent[]> {
  const res = await fetch(`${mesh.url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ goal }),
  });
  expect(res.status).toBe(202);
  const { taskId } = (await res.json()) as { taskId: string };
  const events: TaskEvent[] = [];
  for await (const event of taskEvents(`${mesh.url}/v1/tasks/${taskId}/events`, {
    signal: AbortSignal.timeout(45_000),
  })) {
    events.push(event);
    if (event.type === 'completed' || event.type === 'failed' || event.type === 'cancelled') break;
  }
  return events;
}

/** The first event of a type (about one subtask, when given). */
function first<T extends TaskEvent['type']>(events: TaskEvent[], type: T, subtaskId?: string) {
  return events.find(
    (e): e is Extract<TaskEvent, { type: T }> =>
      e.type === type && (subtaskId === undefined || ('subtaskId' in e && e.subtaskId === subtaskId)),
  );
}

describe('a worker made by new-worker', () => {
  let root: string;
  let mesh: Mesh | undefined;

  beforeAll(async () => {
    root = copyRepo();
    await newWorker('analyst', { root, description: 'Analyses a question and answers it in prose.' });
    // What `flotilla new-worker` runs next, without the network: the store already has every package.
    await sh(root, 'pnpm', ['install', '--prefer-offline', '--frozen-lockfile=false', '--reporter=silent']);
  }, 120_000);

  afterAll(async () => {
    await mesh?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('type-checks and builds', async () => {
    await sh(root, 'pnpm', ['exec', 'tsc', '-b', 'packages/analyst/tsconfig.json']);
    expect(existsSync(join(root, 'packages/analyst/dist/main.js'))).toBe(true);
  }, 120_000);

  it('passes its generated tests', async () => {
    const out = await sh(root, 'pnpm', ['exec', 'vitest', 'run', '--project', 'analyst']);
    // Both generated files ran: a vitest that found no tests would pass too.
    expect(out).toMatch(/Test Files +2 passed/);
  }, 120_000);

  it('runs under the local mesh and takes the subtask the planner gives its role', async () => {
    // The default mesh, as `pnpm dev` starts it from the copy (one researcher instead of three, to
    // spare two cores): nothing names the new role, discovery alone brings it up.
    mesh = await startMesh({
      packagesDir: join(root, 'packages'),
      replicas: { researcher: 1 },
      env: { LLM_PROVIDER: 'offline', QUEUE_PREFIX: uniquePrefix('scaffold') },
    });
    expect(mesh.services.map((s) => s.role).sort()).toEqual(['analyst', 'coder', 'orchestrator', 'researcher']);

    // The offline planner gives code-ish clauses to the coder and the rest to the first other role
    // in name order: analyst, ahead of researcher.
    const events = await eventsOf(mesh, 'explain what a worker role is; write code to compute 2+2');
    expect(first(events, 'planned')?.subtasks.map((s) => [s.subtaskId, s.role])).toEqual([
      ['s1', 'analyst'],
      ['s2', 'coder'],
    ]);
    const started = first(events, 'subtask_started', 's1');
    expect(started).toMatchObject({ role: 'analyst', replica: expect.stringMatching(/^analyst-\d+$/) });
    expect(first(events, 'subtask_finished', 's1')).toMatchObject({ stopReason: 'finish', replica: started?.replica });
    expect(events.at(-1)?.type).toBe('completed');
  }, 120_000);
});
