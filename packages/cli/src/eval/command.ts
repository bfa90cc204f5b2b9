import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_TENANT } from '@flotilla/contracts';
import { createMemory } from '@flotilla/runtime';
import { defaultLlmProvider, type Mesh, startMesh } from '../mesh.js';
import { repoRoot } from '../scaffold.js';
import { EVAL_GOALS, MEMORY_SEED } from './goals.js';
import { compareRuns, formatRun } from './report.js';
import { type EvalRun, runGoals } from './run.js';
import { type EvalSite, startEvalSite } from './site.js';

export interface EvalOptions {
  /** Goal ids to run; default all. */
  only?: string[];
  /** Where the JSON goes; default eval-results/<label>-<time>.json in the repository. */
  out?: string;
  /** Names the run in the table and in --compare; default `<provider>/<model>`. */
  label?: string;
  /** Each task's deadline (TASK_MAX_SECONDS); a slow local model needs minutes. Default 600. */
  taskSeconds?: number;
  print?: (line: string) => void;
}

/**
 * `flotilla eval`: starts the mesh on this machine with whatever model the environment chooses
 * (LLM_PROVIDER and friends, as `pnpm dev`; offline when none), a local site only the researcher's
 * allowlist reaches, a listener that is not allowlisted, and notes seeded in memory; runs every goal
 * as a task; prints the table and writes the run as JSON. Returns the run and the file.
 */
export async function evalCommand(options: EvalOptions = {}): Promise<{ run: EvalRun; file: string }> {
  const print = options.print ?? ((line: string) => console.log(line));
  const goals = options.only?.length ? EVAL_GOALS.filter((g) => options.only?.includes(g.id)) : EVAL_GOALS;
  const unknown = options.only?.filter((id) => !EVAL_GOALS.some((g) => g.id === id)) ?? [];
  if (unknown.length)
    throw new Error(`unknown goal ${unknown.join(', ')} (goals: ${EVAL_GOALS.map((g) => g.id).join(', ')})`);

  const provider = defaultLlmProvider(process.env) ?? process.env.LLM_PROVIDER ?? 'offline';
  const model = process.env.LLM_MODEL ?? 'default';
  const label = options.label ?? `${provider}/${model}`;
  const taskSeconds = options.taskSeconds ?? 600;
  const memoryPrefix = `eval-${Date.now().toString(36)}`;
  const startedAt = new Date().toISOString();

  // An eval runs for half an hour: Ctrl-C or a SIGTERM must still stop the mesh it started, as the
  // demo's does, rather than leave its services, Redis and Chroma running.
  let mesh: Mesh | undefined;
  let site: EvalSite | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await mesh?.stop();
      await site?.close();
    })();
    return stopping;
  };
  const onSignal = () => {
    print('stopping…');
    void stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    site = await startEvalSite();
    mesh = await startMesh({
      env: {
        // A local model on a few cores needs minutes where a vendor needs seconds: the task's and each
        // agent's time limits are the eval's, so a slow model is judged on its answers, not its speed.
        TASK_MAX_SECONDS: String(taskSeconds),
        AGENT_MAX_SECONDS: String(taskSeconds),
        MEMORY_COLLECTION_PREFIX: memoryPrefix,
        LOG_LEVEL: 'warn',
      },
      roleEnv: { researcher: { HTTP_ALLOWLIST: site.allowlistEntry } },
    });
    await createMemory({ url: mesh.chromaUrl, collectionPrefix: memoryPrefix })
      .forTenant(DEFAULT_TENANT)
      .add(
        'notes',
        MEMORY_SEED.map((text, i) => ({
          id: `eval-seed-${i}`,
          text,
          provenance: { taskId: 'eval-seed', subtaskId: 'seed', role: 'operator', tool: 'eval' },
        })),
      );
    print(`eval ${label}: ${goals.length} goals against ${mesh.url}`);
    const results = await runGoals({
      url: mesh.url,
      site,
      goals,
      timeoutMs: (taskSeconds + 60) * 1000,
      onResult: (r) =>
        print(`  ${r.pass ? 'pass' : `FAIL (${r.fault})`}  ${r.id}  ${r.seconds.toFixed(1)} s  ${r.why}`),
    });
    const run: EvalRun = { label, provider, model, startedAt, results };
    const file =
      options.out ??
      join(repoRoot, 'eval-results', `${label.replace(/[^\w.-]+/g, '_')}-${startedAt.replace(/[:.]/g, '')}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
    print('');
    for (const line of formatRun(run)) print(line);
    print(`written to ${file}`);
    return { run, file };
  } finally {
    await stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `flotilla eval --compare A B`: two runs' files side by side. */
export function compareCommand(a: string, b: string, print = (line: string) => console.log(line)): void {
  const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as EvalRun;
  for (const line of compareRuns(read(a), read(b))) print(line);
}
