// Spawns the orchestrator's real entry point: refusing to start (exit 78 with one line naming the
// variable, nothing else) and starting are what a process does, which no in-process test shows.
// Runs the built dist/ (pnpm build first); the one case that starts needs the run's Redis.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatApiKeyLine, generateApiKey } from '@flotilla/runtime/auth';
import {
  freePort,
  type RunningProcess,
  startProcess,
  stopAll,
  testServices,
  uniquePrefix,
  waitFor,
} from '@flotilla/test-utils';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const example = fileURLToPath(new URL('../../../compose/secrets/api_keys.example', import.meta.url));

let procs: RunningProcess[] = [];
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-orchestrator-main-'));
});
afterEach(async () => {
  await stopAll(procs);
  procs = [];
  rmSync(dir, { recursive: true, force: true });
});

function start(env: Record<string, string | undefined>) {
  const proc = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
    cwd: packageDir,
    // Only the settings each case names: the test's own environment must not decide the outcome.
    env: {
      LLM_PROVIDER: 'offline',
      AUTH: undefined,
      API_KEYS_FILE: undefined,
      HEALTH_HOST: undefined,
      OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
      ...env,
    },
  });
  procs.push(proc);
  return proc;
}

async function refusal(env: Record<string, string | undefined>) {
  const proc = start(env);
  const code = await proc.exited;
  return { code, stderr: proc.stderr() };
}

describe('the orchestrator fails closed', () => {
  it('exits 78 without keys, naming API_KEYS_FILE', async () => {
    const { code, stderr } = await refusal({});
    expect(code).toBe(78);
    expect(stderr).toMatch(/^config error: API_KEYS_FILE: required/m);
  });

  it('exits 78 on an empty keys file and on the committed example, naming API_KEYS_FILE', async () => {
    const empty = join(dir, 'api_keys');
    writeFileSync(empty, '');
    const emptied = await refusal({ API_KEYS_FILE: empty });
    expect(emptied.code).toBe(78);
    expect(emptied.stderr).toContain(`config error: API_KEYS_FILE: ${empty} holds no keys`);

    const copied = await refusal({ API_KEYS_FILE: example });
    expect(copied.code).toBe(78);
    expect(copied.stderr).toMatch(/^config error: API_KEYS_FILE: .* is the example entry/m);
    expect(copied.stderr).not.toContain('    at ');
  });

  it('exits 78 on a malformed line without printing any line of the file', async () => {
    const file = join(dir, 'api_keys');
    const line = formatApiKeyLine('alice', 'tasks', generateApiKey());
    writeFileSync(file, `${line}\n${line.replace('tasks', 'root')}-typo\n`);
    const { code, stderr } = await refusal({ API_KEYS_FILE: file });
    expect(code).toBe(78);
    expect(stderr).toMatch(/^config error: API_KEYS_FILE: .*line 2/m);
    expect(stderr).not.toContain(line.split(' ')[2]);
  });

  it('exits 78 when AUTH=off would serve a non-loopback address', async () => {
    const { code, stderr } = await refusal({ AUTH: 'off', HEALTH_HOST: '0.0.0.0' });
    expect(code).toBe(78);
    expect(stderr).toMatch(/^config error: AUTH: off is allowed only when the API listens on loopback/m);
  });

  it('runs with AUTH=off on loopback, where a request needs no key (control)', async () => {
    const port = await freePort();
    const prefix = uniquePrefix('orch-main');
    const proc = start({
      AUTH: 'off',
      HEALTH_HOST: '127.0.0.1',
      PORT: String(port),
      HEALTH_PORT: String(port),
      REDIS_URL: testServices().redisUrl,
      QUEUE_PREFIX: prefix,
      CHROMA_URL: undefined,
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        async () => {
          if (proc.child.exitCode !== null) throw new Error(`exited: ${proc.stderr().slice(-2000)}`);
          return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok === true;
        },
        { what: 'the orchestrator to be ready', timeoutMs: 30_000 },
      );
      expect((await fetch(`${url}/v1/tasks`)).status).toBe(200);
    } finally {
      await stopAll([proc]);
      const redis = new Redis(testServices().redisUrl);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
