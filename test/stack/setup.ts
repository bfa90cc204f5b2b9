// Global setup of the stack test: canary secrets, image build, `up --scale researcher=3`, wait until
// every container is ready; teardown brings the stack down (volumes too) and removes the canaries.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ContainerInfo,
  compose,
  containers,
  docker,
  isReady,
  listenerName,
  must,
  project,
  serviceOf,
  waitFor,
} from './docker.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const RESEARCHERS = 3;
/** The page server the researchers may fetch (compose.site.yaml, site.mjs), as they address it. */
export const SITE_SERVICE = 'stack-site';
export const SITE_URL = `http://${SITE_SERVICE}:8080`;
/**
 * Secrets of compose.yaml beyond the API, LLM and sandbox ones: Chroma's token, the Redis passwords,
 * and the dashboard's API key (an admin key of the keys file below).
 */
export const CREDENTIALS = [
  'chroma_token',
  'dashboard_api_key',
  'redis_admin',
  'redis_orchestrator',
  'redis_dashboard',
  'redis_worker_researcher',
  'redis_worker_coder',
];
/** One-shot services: they exit 0 once done and are ready that way. */
export const ONE_SHOT = ['chroma-data-owner'];
/** The page server on the egress network, reachable only through the egress proxy. */
export const OUTSIDE_SERVICE = 'stack-outside';
export const OUTSIDE_PORT = 7777;

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

export default async function setup() {
  // Canaries live in compose/secrets (gitignored, and inside the build context) so the image scan
  // also proves .dockerignore keeps secret files out of every layer.
  const secretsDir = join(repoRoot, 'compose', 'secrets');
  mkdirSync(secretsDir, { recursive: true });
  // API keys: two tenants, the operator and the dashboard. The keys are canaries (they must never show up in an
  // image, an inspect or a log); the file holds only their hashes, in the documented format, written
  // here by hand as an operator could.
  const apiKey = `canary-api-key-a-${randomBytes(16).toString('hex')}`;
  const otherKey = `canary-api-key-b-${randomBytes(16).toString('hex')}`;
  const adminKey = `canary-api-key-ops-${randomBytes(16).toString('hex')}`;
  const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
  // Chroma's token, one Redis password per user and the dashboard's key, each overridable as <NAME>_SECRET_FILE.
  const credentials = Object.fromEntries(
    CREDENTIALS.map((name) => [name, `canary-${name.replace(/_/g, '-')}-${randomBytes(16).toString('hex')}`]),
  );
  const keysText = [
    `stack-a tasks sha256:${sha256(apiKey)}`,
    `stack-b tasks sha256:${sha256(otherKey)}`,
    `stack-ops admin sha256:${sha256(adminKey)}`,
    // The dashboard calls the approvals API with its own admin key.
    `stack-dashboard admin sha256:${sha256(credentials.dashboard_api_key as string)}`,
  ].join('\n');
  const llmKey = `canary-llm-key-${randomBytes(16).toString('hex')}`;
  const sandboxToken = `canary-sandbox-token-${randomBytes(16).toString('hex')}`;
  const keysFile = join(secretsDir, 'stacktest-api_keys');
  const keyFile = join(secretsDir, 'stacktest-llm_api_key');
  const sandboxTokenFile = join(secretsDir, 'stacktest-sandbox_token');
  // 0644: non-Swarm Compose bind-mounts secret files as they are, and the services run as uid 65532.
  writeFileSync(keysFile, `${keysText}\n`, { mode: 0o644 });
  writeFileSync(keyFile, llmKey, { mode: 0o644 });
  writeFileSync(sandboxTokenFile, sandboxToken, { mode: 0o644 });
  const credentialFiles = CREDENTIALS.map((name) => {
    const file = join(secretsDir, `stacktest-${name}`);
    writeFileSync(file, credentials[name] as string, { mode: 0o644 });
    return file;
  });

  const port = await freePort();
  Object.assign(process.env, {
    COMPOSE_FILE: [
      join(repoRoot, 'compose', 'compose.yaml'),
      join(repoRoot, 'test', 'stack', 'compose.site.yaml'),
    ].join(delimiter),
    COMPOSE_PROJECT_NAME: project,
    FLOTILLA_VERSION: process.env.FLOTILLA_VERSION ?? 'stacktest',
    ORCHESTRATOR_PORT: String(port),
    OTEL_DEBUG_VERBOSITY: 'detailed',
    // One job per researcher at a time: then N requests open at once at the site's barrier can only
    // come from N replicas (what the fan-out test proves).
    RESEARCHER_CONCURRENCY: '1',
    API_KEYS_SECRET_FILE: keysFile,
    LLM_API_KEY_SECRET_FILE: keyFile,
    SANDBOX_TOKEN_SECRET_FILE: sandboxTokenFile,
    ...Object.fromEntries(CREDENTIALS.map((name, i) => [`${name.toUpperCase()}_SECRET_FILE`, credentialFiles[i]])),
    // The canaries themselves, for the tests: STACK_CHROMA_TOKEN, STACK_REDIS_ADMIN, ...
    ...Object.fromEntries(CREDENTIALS.map((name) => [`STACK_${name.toUpperCase()}`, credentials[name]])),
    STACK_SANDBOX_TOKEN: sandboxToken,
    STACK_API_KEY: apiKey,
    STACK_OTHER_API_KEY: otherKey,
    STACK_ADMIN_API_KEY: adminKey,
    STACK_API_KEYS_TEXT: keysText,
    STACK_LLM_KEY: llmKey,
    STACK_BASE_URL: `http://127.0.0.1:${port}`,
  });

  const teardown = async () => {
    if (process.env.STACK_KEEP === '1') return;
    await docker(['rm', '-f', listenerName]);
    await compose(['down', '--volumes', '--remove-orphans', '--timeout', '40'], { timeoutMs: 180_000 });
    rmSync(keysFile, { force: true });
    rmSync(keyFile, { force: true });
    rmSync(sandboxTokenFile, { force: true });
    for (const file of credentialFiles) rmSync(file, { force: true });
  };

  try {
    // A run killed earlier may have left containers, networks or volumes behind: start from nothing.
    // The listener first: while it is attached to the egress network, `down` cannot remove that network.
    await docker(['rm', '-f', listenerName]);
    await must(compose(['down', '--volumes', '--remove-orphans', '--timeout', '10'], { timeoutMs: 180_000 }));
    if (process.env.STACK_SKIP_BUILD !== '1') {
      // With the dashboard profile: the suite runs one dashboard container to prove its Redis user read-only.
      await must(compose(['--profile', 'dashboard', 'build'], { timeoutMs: 1_800_000 }));
    }
    // The site first: the researchers' allowlist must name its address (http.get refuses a private
    // address unless the address itself is listed), and that address exists only once it runs.
    // So is the outside listener's: the egress proxy is started with the same list.
    await must(compose(['up', '-d', SITE_SERVICE, OUTSIDE_SERVICE], { timeoutMs: 300_000 }));
    const [site] = await containers(SITE_SERVICE);
    const [outside] = await containers(OUTSIDE_SERVICE);
    if (!site || !outside) throw new Error(`${SITE_SERVICE} or ${OUTSIDE_SERVICE} did not start`);
    for (const c of [site, outside]) {
      await waitFor(
        `${c.Name} to listen`,
        async () => (await must(docker(['logs', c.Id]))).includes('"event":"listening"'),
        60_000,
        500,
      );
    }
    const siteIp = site.NetworkSettings.Networks[`${project}_backend`]?.IPAddress;
    if (!siteIp) throw new Error(`${SITE_SERVICE} has no address on ${project}_backend`);
    const outsideIp = outside.NetworkSettings.Networks[`${project}_egress`]?.IPAddress;
    if (!outsideIp) throw new Error(`${OUTSIDE_SERVICE} has no address on ${project}_egress`);
    process.env.RESEARCHER_HTTP_ALLOWLIST = `${SITE_SERVICE}:8080,${siteIp}:8080,${outsideIp}:${OUTSIDE_PORT}`;
    // The site is on backend, which the researchers share with it and the proxy cannot reach: they
    // fetch it directly (its requests keep their backend source addresses, which the fan-out test reads).
    process.env.EXTRA_NO_PROXY = SITE_SERVICE;
    process.env.STACK_SITE_ID = site.Id;
    process.env.STACK_OUTSIDE_IP = outsideIp;

    await must(compose(['up', '-d', '--scale', `researcher=${RESEARCHERS}`], { timeoutMs: 600_000 }));
    await waitFor(
      'every container ready',
      async () => {
        const all = await containers();
        const researchers = all.filter((c) => serviceOf(c) === 'researcher');
        const done = (c: ContainerInfo) =>
          ONE_SHOT.includes(serviceOf(c)) && c.State.Status === 'exited' && c.State.ExitCode === 0;
        return all.length > 0 && researchers.length === RESEARCHERS && all.every((c) => isReady(c) || done(c));
      },
      300_000,
      2000,
    );
  } catch (err) {
    const ps = await compose(['ps']);
    const logs = await compose(['logs', '--no-color', '--tail', '40']);
    console.error(`stack did not come up:\n${ps.stdout}\n${logs.stdout.slice(-20_000)}`);
    await teardown();
    throw err;
  }
  return teardown;
}
