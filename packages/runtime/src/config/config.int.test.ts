// Spawns real node processes: a service's exit status (78) and what it prints to stderr are the
// behaviour under test, and only a real process shows them. Runs the built fixture
// (build first: npx tsc -b packages/runtime/tsconfig.json).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunningProcess, startProcess, stopAll } from '@flotilla/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('../../dist/config/fixtures/load-config.js', import.meta.url));
const CANARY = 'canary-api-token-5d1e0c2b9a87';

let procs: RunningProcess[] = [];
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-config-int-'));
});
afterEach(async () => {
  await stopAll(procs);
  procs = [];
  rmSync(dir, { recursive: true, force: true });
});

async function run(env: Record<string, string | undefined>) {
  // Unset what the test environment may carry, so each case sees only its own settings.
  const proc = startProcess(process.execPath, [fixture], {
    env: { API_TOKEN: undefined, API_TOKEN_FILE: undefined, ...env },
  });
  procs.push(proc);
  const code = await proc.exited;
  return { code, stderr: proc.stderr(), stdout: proc.stdout() };
}

function expectReadableFailure(result: { code: unknown; stderr: string }, line: string) {
  expect(result.code).toBe(78);
  expect(result.stderr).toContain(`config error: ${line}\n`);
  expect(result.stderr).not.toContain('    at ');
  expect(result.stderr).not.toContain(CANARY);
}

describe('a service with bad config', () => {
  it('exits 78 naming a missing variable', async () => {
    expectReadableFailure(await run({}), 'API_TOKEN: required, but not set (set API_TOKEN or API_TOKEN_FILE)');
  });

  it('exits 78 naming a bad number, without echoing the secret', async () => {
    const result = await run({ AGENT_MAX_STEPS: 'abc', API_TOKEN: CANARY });
    expectReadableFailure(result, 'AGENT_MAX_STEPS: expected a positive integer, got "abc"');
  });

  it('exits 78 naming an unreadable _FILE', async () => {
    const path = join(dir, 'api_token');
    expectReadableFailure(await run({ API_TOKEN_FILE: path }), `API_TOKEN_FILE: cannot read ${path} (ENOENT)`);
  });

  it('exits 78 hiding a secret that fails validation', async () => {
    const short = 'canary-short';
    const result = await run({ API_TOKEN: short });
    expectReadableFailure(result, 'API_TOKEN: expected at least 16 characters (secret, value hidden)');
    expect(result.stderr).not.toContain(short);
  });

  it('starts when the secret comes from a file', async () => {
    const path = join(dir, 'api_token');
    writeFileSync(path, `${CANARY}\n`);
    const result = await run({ API_TOKEN_FILE: path, AGENT_MAX_STEPS: '3' });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ steps: 3, tokenLength: CANARY.length });
  });
});
