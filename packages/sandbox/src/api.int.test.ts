// The sandbox's HTTP contract against the real service (dist/main.js): authentication, rejections
// that name the field, start-up refusal without a token (exit 78), and 100 requests at once against
// a few run slots. Concurrency and process exit codes are properties of the process and its
// sockets, which app.inject() would not show.
import { fileURLToPath } from 'node:url';
import { startProcess, stopAll } from '@flotilla/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from './testing/service.test.helpers.js';

const SLOTS = 3;
const packageDir = fileURLToPath(new URL('..', import.meta.url));
let sandbox: RunningSandbox;

beforeAll(async () => {
  sandbox = await startSandbox(
    { name: 'api', isolation: 'auto' },
    { SANDBOX_MAX_CONCURRENT: String(SLOTS), SANDBOX_MAX_CODE_BYTES: '1000', SANDBOX_MAX_FILES: '2' },
  );
});

afterAll(async () => {
  await sandbox?.stop();
});

const problemFields = (body: Record<string, unknown>) =>
  ((body.errors as { field: string }[] | undefined) ?? []).map((e) => e.field);

describe('POST /v1/run', () => {
  it('answers 401 without the token or with a wrong one, and runs with the right one', async () => {
    const request = { language: 'python', code: 'print(1)' };
    const none = await sandbox.run(request, { token: null });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('FLOTILLA_UNAUTHORIZED');
    expect((await sandbox.run(request, { token: `${sandbox.token}x` })).status).toBe(401);
    const ok = await sandbox.run(request);
    expect(ok.status).toBe(200);
    expect(ok.body.stdout).toBe('1\n');
  });

  it.each([
    ['an unknown language', { language: 'ruby', code: 'puts 1' }, 422, 'language'],
    ['no code', { language: 'python', code: '' }, 422, 'code'],
    ['code over its cap', { language: 'python', code: `print(${'1'.repeat(1000)})` }, 422, 'code'],
    ['a timeout over the maximum', { language: 'python', code: 'print(1)', timeoutMs: 10 ** 7 }, 422, 'timeoutMs'],
    ['a memory limit under the minimum', { language: 'python', code: 'print(1)', memoryMb: 1 }, 422, 'memoryMb'],
    ['too many files', { language: 'python', code: 'print(1)', files: { a: '', b: '', c: '' } }, 422, 'files'],
    [
      'a file outside the run directory',
      { language: 'python', code: 'print(1)', files: { '../x': '' } },
      422,
      'files.../x',
    ],
    ['a file over the program', { language: 'python', code: 'print(1)', files: { 'main.py': '' } }, 422, 'files'],
    ['an unknown field', { language: 'python', code: 'print(1)', network: true }, 422, 'network'],
    ['a body that is not JSON', '{"language": "python", "code":', 400, 'body'],
  ])('rejects %s with %i naming %s', async (_what, request, status, field) => {
    const res = await sandbox.run(request);
    expect(res.status).toBe(status);
    expect(problemFields(res.body)).toContain(field);
  });

  it('answers 415 naming the content type when the body is not JSON', async () => {
    const res = await fetch(`${sandbox.url}/v1/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sandbox.token}`, 'content-type': 'text/plain' },
      body: 'print(1)',
    });
    expect(res.status).toBe(415);
    expect(problemFields((await res.json()) as Record<string, unknown>)).toEqual(['header.content-type']);
  });

  it('answers each of 100 concurrent runs or refuses it with 429 at once; none hangs, the server stays ready', async () => {
    const before = refused(await sandbox.metrics());
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        sandbox.run({ language: i % 2 ? 'python' : 'javascript', code: i % 2 ? 'print(7)' : 'console.log(7)' }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const answered = results.filter((r) => r.status === 200);
    // Only SLOTS run at once, so 100 at once cannot all be answered: some must be refused.
    expect(answered.length).toBeGreaterThanOrEqual(1);
    expect(answered.length).toBeLessThan(100);
    for (const r of answered) expect(r.body).toMatchObject({ stdout: '7\n', exitCode: 0 });
    for (const r of results.filter((x) => x.status === 429)) expect(r.body.code).toBe('FLOTILLA_SANDBOX_BUSY');
    // Refusals are counted, one per 429.
    expect(refused(await sandbox.metrics()) - before).toBe(100 - answered.length);
    expect(await sandbox.ready()).toBe(true);
    // The slots are all free again.
    const again = await Promise.all(
      Array.from({ length: SLOTS }, () => sandbox.run({ language: 'python', code: 'print(8)' })),
    );
    expect(again.map((r) => r.status)).toEqual(Array(SLOTS).fill(200));
  });

  it('counts runs by outcome and records their durations', async () => {
    await sandbox.run({ language: 'python', code: 'import sys; sys.exit(2)' });
    const text = await sandbox.metrics();
    expect(text).toMatch(/flotilla_sandbox_runs_total\{language="python",outcome="error"[^}]*\} [1-9]/);
    expect(text).toMatch(/flotilla_sandbox_runs_total\{language="python",outcome="ok"[^}]*\} [1-9]/);
    expect(text).toMatch(/flotilla_sandbox_run_duration_count\{language="python",outcome="ok"[^}]*\} [1-9]/);
  });
});

function refused(metrics: string): number {
  let total = 0;
  for (const m of metrics.matchAll(/flotilla_sandbox_runs_total\{[^}]*outcome="refused"[^}]*\} (\d+)/g))
    total += Number(m[1]);
  return total;
}

describe('start-up', () => {
  it('exits 78 without a token, naming the variable, and never prints a rejected token', async () => {
    const env = { PORT: '0', SANDBOX_TOKEN: undefined, SANDBOX_TOKEN_FILE: undefined };
    const missing = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
      cwd: packageDir,
      env,
    });
    const short = startProcess(process.execPath, ['--import', '@flotilla/runtime/register', 'dist/main.js'], {
      cwd: packageDir,
      env: { ...env, SANDBOX_TOKEN: 'tooshort-secret' },
    });
    try {
      expect(await missing.exited).toBe(78);
      expect(missing.stderr()).toMatch(/config error: SANDBOX_TOKEN: required/);
      expect(await short.exited).toBe(78);
      expect(short.stderr()).toMatch(/config error: SANDBOX_TOKEN: must be at least 16 characters/);
      expect(short.stderr() + short.stdout()).not.toContain('tooshort-secret');
    } finally {
      await stopAll([missing, short]);
    }
  });
});
