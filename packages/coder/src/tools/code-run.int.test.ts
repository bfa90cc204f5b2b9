// The coder's code.run against the real sandbox service (started from its dist/): the request
// shape, the bearer token and the errors are a wire contract between two processes, so the test
// speaks to the real far side rather than a stand-in written for the test.
import { type RunningSandbox, startSandbox } from '@flotilla/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeRunTool, SandboxError, SandboxUnavailableError } from './code-run.js';

let sandbox: RunningSandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ name: 'coder', isolation: 'auto' });
});

afterAll(async () => {
  await sandbox?.stop();
});

const log = { info() {}, warn() {}, error() {}, child: () => log };
const ctx = () => ({
  signal: AbortSignal.timeout(30_000),
  log,
  attempt: 1,
  idempotencyKey: 'task:sub:0',
  tenant: 'default',
  taskId: 'task',
  subtaskId: 'sub',
  role: 'coder',
});

describe('code.run', () => {
  it('runs a program in the sandbox with the token and returns its result', async () => {
    const tool = codeRunTool({ url: sandbox.url, token: sandbox.token });
    const result = await tool.run(
      { language: 'python', code: 'import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))', stdin: '30 12' },
      ctx(),
    );
    expect(result).toMatchObject({ stdout: '42\n', exitCode: 0, timedOut: false, memoryExceeded: false });
    expect(tool.output?.safeParse(result).success).toBe(true);
  });

  it('fails without retrying when the token is wrong, and before any request when none is set', async () => {
    const wrong = codeRunTool({ url: sandbox.url, token: `${sandbox.token}-wrong` });
    const err = await wrong.run({ language: 'python', code: 'print(1)' }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ status: 401, retryable: false });
    const none = codeRunTool({ url: sandbox.url, token: undefined });
    await expect(none.run({ language: 'python', code: 'print(1)' }, ctx())).rejects.toBeInstanceOf(
      SandboxUnavailableError,
    );
  });

  it('passes the sandbox’s reason on for a request it rejects', async () => {
    const tool = codeRunTool({ url: sandbox.url, token: sandbox.token });
    const err = await tool
      .run({ language: 'python', code: 'print(1)', files: { 'main.py': 'x' } }, ctx())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 422, retryable: false });
    expect(String((err as Error).message)).toContain('sandbox answered 422');
  });
});
