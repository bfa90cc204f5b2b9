// Global setup of the Swarm suite: canary secrets, the stack file for this run, `docker stack deploy`,
// wait until every service has its tasks running (Swarm counts a task with a healthcheck as running
// only once healthy). Teardown: `docker stack rm`, wait until its containers and networks are gone,
// then remove its volumes.
// scripts/test-swarm made the swarm (and leaves it) and built the images.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { swarmConfigText } from '../../scripts/swarm-config.mjs';
import { docker, must, waitFor } from '../stack/docker.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The stack's name; scripts/test-swarm removes the same one if vitest is killed. */
export const stack = process.env.SWARM_STACK ?? 'flotilla-swarmtest';
export const RESEARCHERS = 3;
export const SITE_SERVICE = 'swarm-site';
/** This run's stack file: compose.stack.yaml with a free port (Swarm reads the port as a number). */
export const stackFile = join(repoRoot, 'compose', `.${stack}.stack.yaml`);
const secretsDir = join(repoRoot, 'compose', 'secrets');
const secretPrefix = `${stack}-`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export type ServiceRow = { Name: string; Replicas: string };

/** `docker service ls` of this stack: name and "running/desired". */
export async function services(): Promise<ServiceRow[]> {
  const out = await must(
    docker(['service', 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`, '--format', '{{json .}}']),
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ServiceRow);
}

/** Every service has all its tasks running; the one-shot chown has run to completion. */
export async function allRunning(): Promise<boolean> {
  const rows = await services();
  if (rows.length === 0) return false;
  for (const row of rows) {
    const [running, desired] = row.Replicas.split(' ')[0]?.split('/').map(Number) ?? [];
    if (row.Name.endsWith('_chroma-data-owner')) continue; // one-shot: 0/1 once complete
    if (running !== desired) return false;
  }
  return true;
}

async function removeStack(): Promise<void> {
  await docker(['stack', 'rm', stack], { timeoutMs: 120_000 });
  // `stack rm` returns before the tasks stop; the networks go last. Wait for both, so the engine is
  // left as it was found.
  await waitFor(
    `stack ${stack} to be gone`,
    async () => {
      const label = `label=com.docker.stack.namespace=${stack}`;
      const left = await Promise.all([
        must(docker(['ps', '-aq', '--filter', label])),
        must(docker(['network', 'ls', '-q', '--filter', label])),
      ]);
      return left.every((out) => out.trim() === '');
    },
    180_000,
    2000,
  );
  // `stack rm` keeps named volumes: remove them, or the next run starts on this run's Redis data.
  const volumes = (await must(docker(['volume', 'ls', '-q', '--filter', `label=com.docker.stack.namespace=${stack}`])))
    .split('\n')
    .filter(Boolean);
  if (volumes.length > 0) await must(docker(['volume', 'rm', '-f', ...volumes]));
}

export default async function setup() {
  mkdirSync(secretsDir, { recursive: true });
  const apiKey = `canary-api-key-${randomBytes(16).toString('hex')}`;
  // The rollout's stream of tasks has its own tenant, so its own rate limit (RATE_LIMIT_MAX per minute).
  const loadKey = `canary-api-key-load-${randomBytes(16).toString('hex')}`;
  const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
  const port = await freePort();
  const composeText = readFileSync(join(repoRoot, 'compose', 'compose.yaml'), 'utf8');
  writeFileSync(stackFile, swarmConfigText(composeText, { env: { ORCHESTRATOR_PORT: String(port) } }));

  // One canary file per secret of the stack, at the path its `${<NAME>_SECRET_FILE:-...}` names.
  const declared = (parse(readFileSync(stackFile, 'utf8')) as { secrets: Record<string, { file: string }> }).secrets;
  const secretFiles: string[] = [];
  const env: Record<string, string> = {};
  for (const [name, { file }] of Object.entries(declared)) {
    const variable = /^\$\{(\w+):-/.exec(file)?.[1];
    if (!variable) throw new Error(`secret ${name}: ${file} names no variable`);
    const path = join(secretsDir, `${secretPrefix}${name}`);
    const text =
      name === 'api_keys'
        ? `swarm-test tasks sha256:${sha256(apiKey)}\nswarm-load tasks sha256:${sha256(loadKey)}\n`
        : `canary-${randomBytes(16).toString('hex')}`;
    writeFileSync(path, text, { mode: 0o600 });
    secretFiles.push(path);
    env[variable] = path;
  }
  Object.assign(process.env, env, {
    FLOTILLA_VERSION: process.env.FLOTILLA_VERSION ?? 'swarmtest',
    // One job per researcher at a time: then N requests open at once at the site's barrier can only
    // come from N replicas.
    RESEARCHER_CONCURRENCY: '1',
    // The site is on backend, which the researchers share and the proxy cannot reach: fetched directly.
    EXTRA_NO_PROXY: SITE_SERVICE,
    SWARM_API_KEY: apiKey,
    SWARM_LOAD_API_KEY: loadKey,
    SWARM_BASE_URL: `http://127.0.0.1:${port}`,
  });

  const teardown = async () => {
    if (process.env.SWARM_KEEP === '1') return;
    await removeStack();
    for (const file of secretFiles) rmSync(file, { force: true });
    rmSync(stackFile, { force: true });
  };

  try {
    await removeStack(); // a run killed earlier
    const files = [
      stackFile,
      join(repoRoot, 'compose', 'compose.swarm.yaml'),
      join(repoRoot, 'test', 'swarm', 'compose.test.yaml'),
    ];
    await must(
      docker(['stack', 'deploy', '--resolve-image', 'never', ...files.flatMap((f) => ['-c', f]), stack], {
        timeoutMs: 300_000,
      }),
    );
    await waitFor('every service running (and healthy)', allRunning, 420_000, 3000);
  } catch (err) {
    const ps = await docker(['stack', 'ps', stack, '--no-trunc', '--format', '{{.Name}} {{.CurrentState}} {{.Error}}']);
    console.error(`stack did not come up:\n${ps.stdout}${ps.stderr}`);
    await teardown();
    throw err;
  }
  return teardown;
}
