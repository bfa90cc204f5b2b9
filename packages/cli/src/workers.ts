import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The `flotilla` field of a worker package's package.json: what makes a package a worker to the
 * local tooling, so `flotilla dev`/`demo` run one made by `flotilla new-worker` without being told.
 *
 * ```json
 * "flotilla": { "role": "researcher", "devReplicas": 3 }
 * "flotilla": { "role": "coder", "devReplicas": 1, "sandbox": true }
 * ```
 */
const WorkerManifest = z.strictObject({
  /**
   * The role the package serves: the same string as its `defineWorker({ role })`. The mesh names the
   * replicas after it (`researcher-2`) and its options key on it.
   */
  role: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, starting with a letter (as defineWorker)'),
  /** Replicas the local mesh starts. Default 1; 0 keeps the worker out of `dev` and `demo`. */
  devReplicas: z.number().int().min(0).max(16).default(1),
  /**
   * The worker runs code in the sandbox service (`@flotilla/sandbox`). The local mesh then starts
   * the sandbox beside it and hands it `SANDBOX_URL` and `SANDBOX_TOKEN`; only workers that say so
   * hold the token, as only they share the sandbox's network in Compose. Default false.
   */
  sandbox: z.boolean().default(false),
});
export type WorkerManifest = z.output<typeof WorkerManifest>;

/** A worker package found under packages/. */
export interface WorkerPackage extends WorkerManifest {
  /** The package's directory, where its dist/main.js runs from. */
  dir: string;
}

/**
 * Every package under `packagesDir` whose package.json has a `flotilla` field, sorted by role.
 * A malformed field or a role served twice throws, naming the file: better at start-up than a mesh
 * that quietly runs without a worker.
 */
export async function discoverWorkers(packagesDir: string): Promise<WorkerPackage[]> {
  const entries = await readdir(packagesDir, { withFileTypes: true });
  const workers: WorkerPackage[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(packagesDir, entry.name);
    const file = join(dir, 'package.json');
    let raw: string;
    try {
      raw = await readFile(file, 'utf8');
    } catch {
      continue; // not a package
    }
    const { flotilla } = JSON.parse(raw) as { flotilla?: unknown };
    if (flotilla === undefined) continue;
    const manifest = WorkerManifest.safeParse(flotilla);
    if (!manifest.success) {
      const problems = manifest.error.issues.map((i) => `${['flotilla', ...i.path].join('.')}: ${i.message}`);
      throw new Error(`${file}: ${problems.join('; ')}`);
    }
    const twin = workers.find((w) => w.role === manifest.data.role);
    if (twin) throw new Error(`${file}: role "${manifest.data.role}" is already served by ${twin.dir}`);
    workers.push({ ...manifest.data, dir });
  }
  return workers.sort((a, b) => a.role.localeCompare(b.role));
}

/** How many replicas of each worker to start: discovered defaults, then a caller's choices. */
export interface ReplicaChoice {
  /** Replicas per role, overriding `devReplicas`; 0 leaves a role out. */
  replicas?: Record<string, number>;
  /** Only these roles start (at least one replica each unless `replicas` says 0); the rest stay out. */
  only?: readonly string[];
}

/** Roles with how many replicas to start, in role order; throws for a role no package serves. */
export function chooseReplicas(
  workers: readonly WorkerPackage[],
  { replicas = {}, only }: ReplicaChoice,
): { worker: WorkerPackage; count: number }[] {
  const known = new Set(workers.map((w) => w.role));
  for (const role of [...Object.keys(replicas), ...(only ?? [])]) {
    if (!known.has(role)) {
      throw new Error(`no worker package serves role "${role}" (found: ${[...known].join(', ') || 'none'})`);
    }
  }
  return workers.flatMap((worker) => {
    const listed = only === undefined || only.includes(worker.role);
    const fallback = only === undefined ? worker.devReplicas : Math.max(1, worker.devReplicas);
    const count = listed ? (replicas[worker.role] ?? fallback) : 0;
    return count > 0 ? [{ worker, count }] : [];
  });
}
