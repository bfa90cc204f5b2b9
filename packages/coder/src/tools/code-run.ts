import { SandboxLanguage, SandboxRunRequest, SandboxRunResult } from '@flotilla/contracts';
import { defineTool, FlotillaError } from '@flotilla/runtime';
import { z } from 'zod';

export const Language = SandboxLanguage;

/** What a run did, as the sandbox answers it (stdout, stderr, exit code, limit flags, out/ files). */
export const RunResult = SandboxRunResult;
export type RunResult = z.output<typeof RunResult>;

/** What the model may ask the sandbox for: the program, its stdin and input files; limits stay the sandbox's. */
export const CodeRunInput = SandboxRunRequest.pick({ language: true, code: true, stdin: true, files: true }).extend({
  code: z.string().min(1).max(100_000),
});

export class SandboxUnavailableError extends FlotillaError {
  readonly retryable = false;
  constructor(message: string) {
    super('FLOTILLA_SANDBOX_UNAVAILABLE', message);
  }
}

/** The sandbox refused or failed a run; `retryable` for 429 (all slots busy) and 5xx. */
export class SandboxError extends FlotillaError {
  readonly retryable: boolean;
  readonly status: number;
  constructor(status: number, detail: string) {
    super('FLOTILLA_SANDBOX_ERROR', `sandbox answered ${status}${detail ? `: ${detail}` : ''}`);
    this.status = status;
    this.retryable = status >= 500 || status === 429;
  }
}

export interface CodeRunOptions {
  /** The sandbox's base URL; unset: every call fails with SandboxUnavailableError. */
  url: string | undefined;
  /** The sandbox's bearer token (SANDBOX_TOKEN / SANDBOX_TOKEN_FILE). */
  token: string | undefined;
  /** Per-attempt timeout. Default 30000 ms. */
  timeoutMs?: number;
}

/**
 * Runs code in the sandbox service, never in this process. A write: running code is a side effect,
 * so the gateway's idempotency key makes a retried job reuse the first run's result.
 */
export function codeRunTool({ url, token, timeoutMs = 30_000 }: CodeRunOptions) {
  return defineTool({
    name: 'code.run',
    description:
      'Run a short python or javascript program in the isolated sandbox (no network; files it writes to out/ come back) ' +
      'and return its stdout, stderr, exit code and whether it hit a time, memory or output limit.',
    input: CodeRunInput,
    output: RunResult,
    sideEffects: 'write',
    timeoutMs,
    retries: 1,
    run: async (input, ctx) => {
      if (!url) throw new SandboxUnavailableError('SANDBOX_URL is not set; the coder has no sandbox to run code in');
      if (!token) throw new SandboxUnavailableError('SANDBOX_TOKEN is not set; the sandbox would refuse the run');
      const res = await fetch(new URL('/v1/run', url), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          ...(ctx.idempotencyKey ? { 'idempotency-key': ctx.idempotencyKey } : {}),
        },
        body: JSON.stringify(input),
        signal: ctx.signal,
      });
      if (!res.ok) {
        // The problem document names what was wrong (a field, a cap); never echo the request.
        const problem = (await res.json().catch(() => undefined)) as { detail?: unknown } | undefined;
        throw new SandboxError(res.status, typeof problem?.detail === 'string' ? problem.detail.slice(0, 300) : '');
      }
      return RunResult.parse(await res.json());
    },
  });
}
