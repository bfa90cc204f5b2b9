import { waitFor } from '@flotilla/test-utils';
import { describe, expect, it } from 'vitest';
import type { RunInput, RunResult } from '../run/runner.js';
import { buildApp, RunSlots } from './app.js';
import type { ServiceLimits } from './request.js';

// The HTTP layer alone, over app.inject(); the real runner is exercised by the *.int.test.ts files.
const TOKEN = 'a-test-token-of-some-length';
const limits: ServiceLimits = {
  max: { timeoutMs: 5000, memoryMb: 256, procs: 32, openFiles: 64, diskMb: 16, fileBytes: 1 << 20 },
  maxCodeBytes: 100,
  maxStdinBytes: 10,
  maxFiles: 2,
  maxFilesBytes: 20,
};
const result = (over: Partial<RunResult> = {}): RunResult => ({
  outcome: 'ok',
  stdout: '1\n',
  stderr: '',
  exitCode: 0,
  timedOut: false,
  memoryExceeded: false,
  outputTruncated: false,
  durationMs: 1,
  ...over,
});

async function app(run: (input: RunInput) => Promise<RunResult>, maxConcurrent = 2) {
  return buildApp({ run, limits, token: TOKEN, maxConcurrent });
}
const post = (payload: unknown, token: string | null = TOKEN) => ({
  method: 'POST' as const,
  url: '/v1/run',
  headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  payload: JSON.stringify(payload),
});

describe('POST /v1/run', () => {
  it('passes the request with limits no higher than the maxima, and answers the result without its outcome', async () => {
    const seen: RunInput[] = [];
    const server = await app(async (input) => {
      seen.push(input);
      return result();
    });
    const res = await server.inject(post({ language: 'python', code: 'print(1)', timeoutMs: 1000, stdin: 'x' }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ...result(), outcome: undefined });
    expect(seen[0]).toMatchObject({ language: 'python', code: 'print(1)', stdin: 'x', slot: 0 });
    expect(seen[0]?.limits).toEqual({ ...limits.max, timeoutMs: 1000 });
  });

  it('refuses with 429 at once when every slot is busy, and frees slots when runs end', async () => {
    const release: (() => void)[] = [];
    const server = await app(
      () =>
        new Promise((resolve) => {
          release.push(() => resolve(result()));
        }),
      2,
    );
    const first = server.inject(post({ language: 'python', code: '1' }));
    const second = server.inject(post({ language: 'python', code: '2' }));
    await waitFor(() => release.length === 2, { what: 'both runs started' });
    const third = await server.inject(post({ language: 'python', code: '3' }));
    expect(third.statusCode).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
    for (const r of release.splice(0)) r();
    expect((await first).statusCode).toBe(200);
    expect((await second).statusCode).toBe(200);
    const fourth = server.inject(post({ language: 'python', code: '4' }));
    await waitFor(() => release.length === 1, { what: 'the run started' });
    for (const r of release.splice(0)) r();
    expect((await fourth).statusCode).toBe(200);
  });

  it('answers 500 revealing nothing when the launch itself fails, and frees the slot', async () => {
    let calls = 0;
    const server = await app(async () => {
      calls++;
      if (calls === 1) throw new Error('bwrap vanished /secret/path');
      return result();
    }, 1);
    const failed = await server.inject(post({ language: 'python', code: '1' }));
    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain('/secret/path');
    expect((await server.inject(post({ language: 'python', code: '1' }))).statusCode).toBe(200);
  });

  it('gives the slot back after a rejected body', async () => {
    const server = await app(async () => result(), 1);
    expect((await server.inject(post({ language: 'ruby', code: '1' }))).statusCode).toBe(422);
    expect((await server.inject({ ...post({}), payload: '{"language":' })).statusCode).toBe(400);
    expect((await server.inject(post({ language: 'python', code: '1' }))).statusCode).toBe(200);
  });

  it('checks the token before anything else', async () => {
    const server = await app(async () => result());
    expect((await server.inject(post({ language: 'ruby' }, null))).statusCode).toBe(401);
    expect((await server.inject(post({ language: 'ruby' }, 'wrong'))).statusCode).toBe(401);
    expect((await server.inject(post({ language: 'ruby' }))).statusCode).toBe(422);
  });

  it.each([
    [{ language: 'python', code: 'x'.repeat(101) }, 'code'],
    [{ language: 'python', code: '1', stdin: 'x'.repeat(11) }, 'stdin'],
    [{ language: 'python', code: '1', files: { a: 'x'.repeat(21) } }, 'files'],
    [{ language: 'python', code: '1', files: { a: '', 'a/b': '' } }, 'files'],
    [{ language: 'python', code: '1', files: { '/etc/passwd': '' } }, 'files./etc/passwd'],
    [{ language: 'python', code: '1', memoryMb: 257 }, 'memoryMb'],
    [{ language: 'python', code: '1', timeoutMs: 1.5 }, 'timeoutMs'],
  ])('rejects %j naming %s', async (payload, field) => {
    const server = await app(async () => result());
    const res = await server.inject(post(payload));
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
  });
});

describe('RunSlots', () => {
  it('hands out each slot once until released', () => {
    const slots = new RunSlots(2);
    expect([slots.acquire(), slots.acquire(), slots.acquire()]).toEqual([0, 1, undefined]);
    slots.release(0);
    expect(slots.acquire()).toBe(0);
    expect(slots.busy).toBe(2);
  });
});
