// Thin helpers over the docker and compose CLIs for the stack test. The CLIs, not an SDK: the test
// checks exactly what an operator would see.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Compose command: FLOTILLA_COMPOSE ("docker compose", "docker-compose") or `docker compose`. */
export const composeCmd = (process.env.FLOTILLA_COMPOSE ?? 'docker compose').split(' ');
// Its own project name, never COMPOSE_PROJECT_NAME: the suite tears its project down, and must not take
// a developer's running stack with it. scripts/test-stack sweeps the same name.
export const project = process.env.STACK_PROJECT ?? 'flotilla-stacktest';
/** The network test's listener: a plain `docker run` container, so `compose down` does not remove it. */
export const listenerName = `${project}-egress-listener`;

export type Result = { code: number; stdout: string; stderr: string };

export async function sh(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 120_000,
      env: process.env,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export const docker = (args: string[], opts?: { timeoutMs?: number }) => sh('docker', args, opts);

export async function compose(args: string[], opts?: { timeoutMs?: number }): Promise<Result> {
  const [cmd, ...pre] = composeCmd as [string, ...string[]];
  return sh(cmd, [...pre, '-p', project, ...args], opts);
}

export async function must(p: Promise<Result>): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

export type ContainerInfo = {
  Id: string;
  Name: string;
  Config: { Hostname: string; User: string; Env: string[]; Labels: Record<string, string>; Image: string };
  State: { Status: string; Running: boolean; ExitCode: number; Health?: { Status: string }; StartedAt: string };
  RestartCount: number;
  HostConfig: {
    ReadonlyRootfs: boolean;
    CapDrop: string[] | null;
    SecurityOpt: string[] | null;
    Memory: number;
    NanoCpus: number;
    PidsLimit: number | null;
    Init: boolean | null;
    RestartPolicy: { Name: string };
    Runtime: string;
  };
  NetworkSettings: { Networks: Record<string, { IPAddress: string; Gateway: string }> };
};

/** Containers of this project, optionally of one service, including stopped ones. */
export async function containers(service?: string): Promise<ContainerInfo[]> {
  const filters = ['--filter', `label=com.docker.compose.project=${project}`];
  if (service) filters.push('--filter', `label=com.docker.compose.service=${service}`);
  const ids = (await must(docker(['ps', '-aq', ...filters]))).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  return JSON.parse(await must(docker(['inspect', ...ids]))) as ContainerInfo[];
}

export const serviceOf = (c: ContainerInfo) => c.Config.Labels['com.docker.compose.service'] ?? '';

/** Ready = running and, when the image or compose defines a healthcheck, healthy. */
export const isReady = (c: ContainerInfo) =>
  c.State.Running && (c.State.Health === undefined || c.State.Health.Status === 'healthy');

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 180_000,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A container's address on one of the project's networks. */
export const ipOn = (c: ContainerInfo, network: string) =>
  c.NetworkSettings.Networks[`${project}_${network}`]?.IPAddress;

export type SandboxResult = {
  stdout: string;
  stderr: string;
  exitCode: number;
  timedOut: boolean;
  memoryExceeded: boolean;
  outputTruncated: boolean;
};

/**
 * POST /v1/run from inside the sandbox container (its port is published nowhere), with the token
 * from its secret file, as the coder would call it.
 */
export async function sandboxRun(sandboxId: string, body: Record<string, unknown>): Promise<SandboxResult> {
  const script =
    "fetch('http://127.0.0.1:8080/v1/run',{method:'POST',headers:{authorization:'Bearer '+" +
    "require('fs').readFileSync('/run/secrets/sandbox_token','utf8').trim(),'content-type':'application/json'}," +
    'body:process.argv[1]}).then(r=>r.text()).then(t=>console.log(t))';
  const out = await must(docker(['exec', sandboxId, '/usr/local/bin/node', '-e', script, JSON.stringify(body)]));
  return JSON.parse(out) as SandboxResult;
}
