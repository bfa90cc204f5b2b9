import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type ToolContext } from '@flotilla/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { codeRunTool, type RunResult, SandboxUnavailableError } from './code-run.js';

// The sandbox service does not exist yet: a loopback server answers its POST /v1/run as specified
// (RunResult JSON), the way the fake LLM vendors stand in for theirs.
const result: RunResult = { exitCode: 0, stdout: '4\n', stderr: '', timedOut: false };
let server: Server;
let sandboxUrl: string;
let received: { method: string; path: string; headers: IncomingHttpHeaders; body: unknown }[];
let answer: { status: number; body: unknown };

beforeEach(async () => {
  received = [];
  answer = { status: 200, body: result };
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sandboxUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const context = (extra: Partial<ToolContext> = {}): ToolContext => ({
  signal: new AbortController().signal,
  log: createLogger({ service: 'coder', level: 'silent' }),
  idempotencyKey: 'task-1:s3:0',
  attempt: 1,
  ...extra,
});

const program = { language: 'javascript' as const, code: 'console.log(2 + 2)' };

describe('code.run', () => {
  it('runs the program in the sandbox, passing the idempotency key, and returns its result', async () => {
    const output = await codeRunTool(sandboxUrl).run(program, context());
    expect(output).toEqual(result);
    expect(received).toEqual([expect.objectContaining({ method: 'POST', path: '/v1/run', body: program })]);
    // A retried job's second call lands once: the sandbox can dedupe on the key.
    expect(received[0]?.headers['idempotency-key']).toBe('task-1:s3:0');
  });

  it('is a write, so the gateway keys it and the "no writes" switch stops it', () => {
    const tool = codeRunTool(sandboxUrl, 5000);
    expect(tool).toMatchObject({ name: 'code.run', sideEffects: 'write', timeoutMs: 5000 });
    expect(tool.input.safeParse({ language: 'cobol', code: 'x' }).success).toBe(false);
    expect(tool.input.safeParse({ language: 'python', code: '' }).success).toBe(false);
  });

  it('fails for good, asking nothing, when there is no sandbox', async () => {
    const error = await codeRunTool(undefined)
      .run(program, context())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect(error).toMatchObject({ code: 'FLOTILLA_SANDBOX_UNAVAILABLE', retryable: false });
    expect(received).toHaveLength(0);
  });

  it.each([
    [503, true],
    [429, true],
    [400, false],
  ])('answers HTTP %i with an error whose retryable is %s', async (status, retryable) => {
    answer = { status, body: { error: 'no' } };
    await expect(codeRunTool(sandboxUrl).run(program, context())).rejects.toMatchObject({
      code: 'FLOTILLA_SANDBOX_ERROR',
      message: `sandbox answered ${status}`,
      retryable,
    });
  });

  it('refuses a reply that is not a run result instead of passing it on', async () => {
    answer = { status: 200, body: { exitCode: 'zero' } };
    await expect(codeRunTool(sandboxUrl).run(program, context())).rejects.toThrow(/exitCode/);
  });

  it('stops with the run when its signal aborts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('deadline'));
    await expect(codeRunTool(sandboxUrl).run(program, context({ signal: controller.signal }))).rejects.toThrow(
      'deadline',
    );
  });
});
