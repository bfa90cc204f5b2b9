// Real processes: the keys command as an operator runs it (`node dist/main.js keys ...`) against a
// real orchestrator (its built dist/, the run's Redis) that is not restarted in between. What is
// under test is the whole path: the key printed once, only its hash in the file, the running
// service picking up an added key and refusing a revoked one. Build first (pnpm build).
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

const cliDir = fileURLToPath(new URL('..', import.meta.url));
const orchestratorDir = fileURLToPath(new URL('../../orchestrator', import.meta.url));

let procs: RunningProcess[] = [];
let dir: string;
let prefix: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-keys-'));
  prefix = uniquePrefix('keys');
});
afterEach(async () => {
  await stopAll(procs);
  procs = [];
  rmSync(dir, { recursive: true, force: true });
  const redis = new Redis(testServices().redisUrl);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

async function keys(...args: string[]) {
  const proc = startProcess(process.execPath, ['dist/main.js', 'keys', ...args], {
    cwd: cliDir,
    env: { API_KEYS_FILE: undefined },
  });
  procs.push(proc);
  const code = await proc.exited;
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}

describe('pnpm keys', () => {
  it('adds a key a running orchestrator accepts, and revoke makes it 401, without a restart', async () => {
    const file = join(dir, 'api_keys');
    const added = await keys('add', 'alice', '--file', file);
    expect(added.code).toBe(0);
    const alice = added.stdout.trim();
    expect(alice).toMatch(/^flk_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(alice);
    expect(text).toMatch(/^alice tasks sha256:[0-9a-f]{64}$/m);
    expect(statSync(file).mode & 0o777).toBe(0o644);

    const port = await freePort();
    const orchestrator = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
      cwd: orchestratorDir,
      env: {
        LLM_PROVIDER: 'offline',
        API_KEYS_FILE: file,
        API_KEYS_RELOAD_MS: '100',
        AUTH: undefined,
        HEALTH_HOST: '127.0.0.1',
        PORT: String(port),
        HEALTH_PORT: String(port),
        REDIS_URL: testServices().redisUrl,
        QUEUE_PREFIX: prefix,
        CHROMA_URL: undefined,
        OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
      },
    });
    procs.push(orchestrator);
    const url = `http://127.0.0.1:${port}`;
    const status = async (key: string) =>
      (await fetch(`${url}/v1/tasks`, { headers: { authorization: `Bearer ${key}` } })).status;
    await waitFor(
      async () => {
        if (orchestrator.child.exitCode !== null) throw new Error(`exited: ${orchestrator.stderr().slice(-2000)}`);
        return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok === true;
      },
      { what: 'the orchestrator to be ready', timeoutMs: 30_000 },
    );
    expect(await status(alice)).toBe(200);

    // A client added while it runs is let in once the file is reloaded.
    const bob = (await keys('add', 'bob', '--file', file)).stdout.trim();
    await waitFor(async () => (await status(bob)) === 200, { what: "bob's new key to be accepted" });

    expect((await keys('revoke', 'alice', '--file', file)).code).toBe(0);
    await waitFor(async () => (await status(alice)) === 401, { what: "alice's revoked key to be refused" });
    // Control: revoking alice touched nobody else.
    expect(await status(bob)).toBe(200);

    // The last key stays: an empty file would be refused at the next start and ignored by this one.
    const last = await keys('revoke', 'bob', '--file', file);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('last key');
    expect(await status(bob)).toBe(200);

    expect((await keys('list', '--file', file)).stdout).toBe('bob tasks\n');
    for (const key of [alice, bob]) expect(`${orchestrator.stdout()}${orchestrator.stderr()}`).not.toContain(key);
  });

  it('refuses a bad or taken name and an unknown revoke, naming the problem', async () => {
    const file = join(dir, 'api_keys');
    expect((await keys('add', 'ops', '--admin', '--file', file)).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^ops admin sha256:/m);
    const taken = await keys('add', 'ops', '--file', file);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('ops already has a key');
    const bad = await keys('add', 'a:b', '--file', file);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid name');
    const unknown = await keys('revoke', 'carol', '--file', file);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no key named "carol"');
    expect((await keys('frobnicate')).code).toBe(2);
  });
});
