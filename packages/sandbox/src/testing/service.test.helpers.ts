// Test support for the sandbox's integration tests (and the lead's end-to-end tests): the real
// service (dist/main.js) as a process, on a free loopback port, with its token in a file.
// Not part of the runtime image (dist/**/*.test.*).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxRunResult } from '@flotilla/contracts';
import { freePort, type RunningProcess, startProcess, stopAll, waitFor } from '@flotilla/test-utils';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));

/** A uid for running the service itself as non-root, as its image does. */
export const SERVICE_UID = 64_123;

/** How to start the service: its isolation setting, and as whom. */
export interface SandboxSetting {
  name: string;
  /** SANDBOX_ISOLATION. */
  isolation: 'auto' | 'userns' | 'root';
  /** Run the service itself as SERVICE_UID (needs root to start it so). */
  nonRoot?: boolean;
}

/**
 * Whether SERVICE_UID can start the service from this checkout: a clone under a private home
 * directory, or a node from one, is out of its reach.
 */
function nonRootCanStart(): boolean {
  const r = spawnSync(
    '/usr/bin/setpriv',
    [
      `--reuid=${SERVICE_UID}`,
      `--regid=${SERVICE_UID}`,
      '--clear-groups',
      '--',
      process.execPath,
      '--import',
      '@flotilla/runtime/register',
      '-e',
      '0',
    ],
    { cwd: packageDir, stdio: 'ignore', timeout: 30_000 },
  );
  return r.status === 0;
}

/** Settings this host can test: all three when the tests run as root. */
export function settings(): SandboxSetting[] {
  if (process.geteuid?.() !== 0) return [{ name: 'userns', isolation: 'userns' }];
  const nonRoot = nonRootCanStart();
  if (!nonRoot) {
    process.stderr.write(
      `sandbox tests: uid ${SERVICE_UID} cannot read this checkout or node; the non-root setting is not tested\n`,
    );
  }
  return [
    { name: 'userns', isolation: 'userns' },
    { name: 'root without user namespace', isolation: 'root' },
    ...(nonRoot ? [{ name: 'non-root service (as in its image)', isolation: 'userns' as const, nonRoot: true }] : []),
  ];
}

export interface RunningSandbox {
  url: string;
  port: number;
  token: string;
  tokenFile: string;
  proc: RunningProcess;
  /** POST /v1/run with the token; resolves with the status and the parsed body. */
  run(
    body: unknown,
    init?: { token?: string | null },
  ): Promise<{ status: number; body: SandboxRunResult & Record<string, unknown> }>;
  ready(): Promise<boolean>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts dist/main.js with its token in a file (SANDBOX_TOKEN_FILE, mode 0600) and `env` on top
 * (the test's own environment below both), and waits for /readyz.
 */
export async function startSandbox(
  setting: SandboxSetting,
  env: Record<string, string> = {},
  options: {
    /**
     * Start the service with its token file open on this descriptor, as a careless parent might.
     * Pick one above libuv's own (node's spawn happens to overwrite low numbers): 100.
     */
    inheritTokenFd?: number;
  } = {},
): Promise<RunningSandbox> {
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-sandbox-test-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  if (setting.nonRoot) {
    chownSync(dir, SERVICE_UID, SERVICE_UID);
    chownSync(tokenFile, SERVICE_UID, SERVICE_UID);
  }
  // As the package's start script: --import resolves from the package's folder.
  const node = [process.execPath, '--import', '@flotilla/runtime/register', 'dist/main.js'];
  const asUser = setting.nonRoot
    ? ['/usr/bin/setpriv', `--reuid=${SERVICE_UID}`, `--regid=${SERVICE_UID}`, '--clear-groups', '--', ...node]
    : node;
  const [command, ...args] =
    options.inheritTokenFd === undefined
      ? asUser
      : ['/bin/bash', '-c', `exec "$@" ${options.inheritTokenFd}<"$0"`, tokenFile, ...asUser];
  const proc = startProcess(command as string, args, {
    cwd: packageDir,
    env: {
      PORT: String(port),
      HEALTH_HOST: '127.0.0.1',
      SANDBOX_TOKEN_FILE: tokenFile,
      SANDBOX_TOKEN: undefined,
      SANDBOX_ISOLATION: setting.isolation,
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const ready = async () => {
    try {
      return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5_000) })).ok;
    } catch {
      return false;
    }
  };
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`sandbox exited ${proc.child.exitCode}: ${proc.stderr()}`);
        return ready();
      },
      { what: `sandbox (${setting.name}) ready`, timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (err) {
    await stopAll([proc]);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    port,
    token,
    tokenFile,
    proc,
    ready,
    run: async (body, init = {}) => {
      const auth = init.token === undefined ? token : init.token;
      const res = await fetch(`${url}/v1/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth === null ? {} : { authorization: `Bearer ${auth}` }) },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        // Nothing may hang: the longest run a test asks for is far below this.
        signal: AbortSignal.timeout(60_000),
      });
      return { status: res.status, body: (await res.json()) as SandboxRunResult & Record<string, unknown> };
    },
    metrics: async () => (await fetch(`${url}/metrics`)).text(),
    stop: async () => {
      await stopAll([proc]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
