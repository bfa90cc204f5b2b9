import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  type RunningProcess,
  type ServiceHandle,
  startChroma,
  startProcess,
  startRedis,
  stopAll,
  waitFor,
} from '@flotilla/devkit';
import { chooseReplicas, discoverWorkers, type ReplicaChoice } from './workers.js';

/** packages/ of this repository, found from this file whether it runs from src (tests) or dist. */
const ownPackagesDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface MeshOptions extends ReplicaChoice {
  /**
   * Where the services run from and worker packages are discovered (each package.json with a
   * `flotilla` field is a worker). Default: this repository's packages/.
   */
  packagesDir?: string;
  /** Orchestrator port; 0 picks a free one. Default 0. */
  port?: number;
  /** Extra environment for every service (LLM_PROVIDER, budgets, ...). */
  env?: Record<string, string | undefined>;
  /** Extra environment per role, applied after `env`. */
  roleEnv?: Record<string, Record<string, string | undefined>>;
  /** Where service output goes: kept for assertions, or also echoed. Default 'keep'. */
  output?: 'keep' | 'inherit';
  /**
   * Start the sandbox service (packages/sandbox) for the workers whose manifest says `sandbox: true`
   * (the coder), so their code.run works. It starts only when such a worker runs. false leaves it
   * out: those workers get no SANDBOX_URL, and the coder then denies code.run (policy_denied).
   * Default true.
   */
  sandbox?: boolean;
}

export interface ServiceProcess {
  role: string;
  name: string;
  healthUrl: string;
  proc: RunningProcess;
}

export interface Mesh {
  url: string;
  redisUrl: string;
  chromaUrl: string;
  prefix: string;
  /** The orchestrator and the worker replicas. */
  services: ServiceProcess[];
  /**
   * The sandbox, when it runs: infrastructure the coder calls over HTTP (like Redis and Chroma),
   * not a queue consumer, so it is not among `services`. Its token is not exposed.
   */
  sandbox?: ServiceProcess & { url: string };
  /** Starts one more replica of a role (e.g. after killing one). */
  add(role: string): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

/** Settings that choose a real model (each may also come from `<NAME>_FILE`). */
const LLM_SETTINGS = [
  'LLM_PROVIDER',
  'LLM_BASE_URL',
  'LLM_URL',
  'LLM_API_KEY',
  'ANTHROPIC_API_KEY',
  'OPENAI_API_KEY',
].flatMap((name) => [name, `${name}_FILE`]);

/**
 * The services run the offline model only when asked by name (LLM_PROVIDER=offline). The local mesh
 * asks for it when nothing in `env` chooses a model, so `pnpm demo` and `pnpm dev` run with no key,
 * and a key in the developer's environment still picks its vendor.
 */
export function defaultLlmProvider(env: Record<string, string | undefined>): string | undefined {
  return LLM_SETTINGS.some((name) => env[name]) ? undefined : 'offline';
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/**
 * The whole mesh as local processes against real Redis and Chroma: what `pnpm demo`, `pnpm dev`
 * and the end-to-end tests run. The orchestrator, then every worker package found under packages/
 * (see WorkerManifest), with its `devReplicas` unless `replicas`/`only` choose otherwise. Services are
 * the built dist/ entry points, started the way their images start them
 * (`node --import @flotilla/runtime/register dist/main.js`).
 */
export async function startMesh(opts: MeshOptions = {}): Promise<Mesh> {
  const packagesDir = opts.packagesDir ?? ownPackagesDir;
  // Before anything starts: a malformed manifest or an unknown role in the options stops here.
  const workers = chooseReplicas(await discoverWorkers(packagesDir), opts);
  const dirs = new Map<string, string>([
    ['orchestrator', join(packagesDir, 'orchestrator')],
    ...workers.map(({ worker }) => [worker.role, worker.dir] as const),
  ]);
  const withSandbox = opts.sandbox !== false && workers.some(({ worker }) => worker.sandbox);
  const handles: ServiceHandle[] = [];
  const services: ServiceProcess[] = [];
  let sandbox: Mesh['sandbox'];
  const everyProcess = () => [...services, ...(sandbox ? [sandbox] : [])].map((s) => s.proc);
  try {
    // allSettled: when one of them cannot start, the other is already running and must be stopped too.
    const started = await Promise.allSettled([startRedis(), startChroma()]);
    for (const s of started) if (s.status === 'fulfilled') handles.push(s.value);
    const [redis, chroma] = started.map((s) => {
      if (s.status === 'rejected') throw s.reason;
      return s.value;
    }) as [ServiceHandle, ServiceHandle];
    const prefix =
      (opts.env?.QUEUE_PREFIX as string | undefined) ?? `flotilla-${process.pid}-${Date.now().toString(36)}`;
    const llmProvider = defaultLlmProvider({ ...process.env, ...opts.env });
    const shared = {
      REDIS_URL: redis.url,
      CHROMA_URL: chroma.url,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'info',
      ...(llmProvider && { LLM_PROVIDER: llmProvider }),
      ...opts.env,
    };
    let counter = 0;

    // What the sandbox's clients are handed: its address and a token made for this mesh alone. The
    // token lives only in these environments (never in a log line or in `Mesh`), and a run cannot
    // read it: the sandbox scrubs each run's environment and hides its own /proc.
    const sandboxToken = withSandbox ? randomBytes(32).toString('hex') : undefined;
    const sandboxPort = withSandbox ? await freePort() : undefined;
    const sandboxUrl = sandboxPort === undefined ? undefined : `http://127.0.0.1:${sandboxPort}`;
    const sandboxUsers = new Set(workers.filter(({ worker }) => worker.sandbox).map(({ worker }) => worker.role));

    const launch = async (role: string, cwd: string, extra: Record<string, string | undefined>) => {
      const healthPort = extra.PORT ? Number(extra.PORT) : await freePort();
      const name = `${role}-${++counter}`;
      const sandboxEnv =
        sandboxUrl && sandboxUsers.has(role) ? { SANDBOX_URL: sandboxUrl, SANDBOX_TOKEN: sandboxToken } : {};
      const proc = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
        cwd,
        ownGroup: true,
        env: {
          ...shared,
          SERVICE_NAME: role,
          HEALTH_PORT: String(healthPort),
          REPLICA_ID: name,
          ...sandboxEnv,
          ...opts.roleEnv?.[role],
          ...extra,
        },
      });
      if (opts.output === 'inherit') {
        proc.child.stdout?.pipe(process.stdout);
        proc.child.stderr?.pipe(process.stderr);
      }
      return { role, name, healthUrl: `http://127.0.0.1:${healthPort}`, proc };
    };
    const spawnService = async (
      role: string,
      extra: Record<string, string | undefined> = {},
    ): Promise<ServiceProcess> => {
      const cwd = dirs.get(role);
      if (!cwd) throw new Error(`the mesh runs no role "${role}" (it runs: ${[...dirs.keys()].join(', ')})`);
      const svc = await launch(role, cwd, extra);
      services.push(svc);
      return svc;
    };
    const waitReady = async (svc: ServiceProcess) => {
      let exit: number | NodeJS.Signals | undefined;
      void svc.proc.exited.then((code) => {
        exit = code;
      });
      await waitFor(
        async () => {
          if (exit !== undefined) throw new Error(`${svc.name} exited with ${exit}: ${svc.proc.stderr().slice(-2000)}`);
          return ready(`${svc.healthUrl}/readyz`);
        },
        { what: `${svc.name} ready`, timeoutMs: 30_000, intervalMs: 100 },
      );
      return svc;
    };

    if (sandboxPort !== undefined) {
      // API and probes on one loopback port: code execution is not offered to the network. Its token
      // comes by environment (SANDBOX_TOKEN_FILE would do too; nothing else on this machine is
      // meant to be kept from the developer who started the mesh).
      sandbox = {
        ...(await launch('sandbox', join(packagesDir, 'sandbox'), {
          PORT: String(sandboxPort),
          HEALTH_PORT: String(sandboxPort),
          HEALTH_HOST: '127.0.0.1',
          SANDBOX_TOKEN: sandboxToken,
          SANDBOX_TOKEN_FILE: undefined,
          // It calls no model: keep the developer's model keys out of the one service that runs
          // foreign code (its runs never see its environment; this is the second fence).
          ...Object.fromEntries(LLM_SETTINGS.map((name) => [name, undefined])),
        })),
        url: sandboxUrl as string,
      };
    }
    const port = opts.port || (await freePort());
    // Loopback only, and without keys: the mesh is one developer's, on this machine. AUTH=off is
    // refused on any other address, so this pair cannot drift into serving an open API.
    const orchestrator = await spawnService('orchestrator', {
      PORT: String(port),
      HEALTH_PORT: String(port),
      HEALTH_HOST: '127.0.0.1',
      AUTH: 'off',
      API_KEYS_FILE: undefined,
    });
    const replicas = workers.flatMap(({ worker, count }) =>
      Array.from({ length: count }, () => spawnService(worker.role)),
    );
    await Promise.all([...(sandbox ? [sandbox] : []), orchestrator, ...(await Promise.all(replicas))].map(waitReady));

    return {
      url: `http://127.0.0.1:${port}`,
      redisUrl: redis.url,
      chromaUrl: chroma.url,
      prefix,
      services,
      ...(sandbox && { sandbox }),
      add: async (role) => waitReady(await spawnService(role)),
      stop: async () => {
        await stopAll(everyProcess(), 30_000);
        await Promise.all(handles.map((h) => h.stop()));
      },
    };
  } catch (err) {
    await stopAll(everyProcess());
    await Promise.all(handles.map((h) => h.stop()));
    throw err;
  }
}
