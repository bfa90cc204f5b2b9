import { defineTool, FlotillaError } from '@flotilla/runtime';
import { z } from 'zod';

export const Language = z.enum(['javascript', 'python']);

export const RunResult = z.object({
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  timedOut: z.boolean(),
});
export type RunResult = z.output<typeof RunResult>;

export class SandboxUnavailableError extends FlotillaError {
  readonly retryable = false;
  constructor(message: string) {
    super('FLOTILLA_SANDBOX_UNAVAILABLE', message);
  }
}

/**
 * Runs code in the sandbox service, never in this process. A write: running code is a side effect,
 * so the gateway's idempotency key makes a retried job reuse the first run's result.
 */
export function codeRunTool(sandboxUrl: string | undefined, timeoutMs = 30_000) {
  return defineTool({
    name: 'code.run',
    description: 'Run a short program in the isolated sandbox and return its exit code, stdout and stderr.',
    input: z.object({ language: Language, code: z.string().min(1).max(100_000) }),
    output: RunResult,
    sideEffects: 'write',
    timeoutMs,
    retries: 1,
    run: async (input, ctx) => {
      if (!sandboxUrl)
        throw new SandboxUnavailableError('SANDBOX_URL is not set; the coder has no sandbox to run code in');
      const res = await fetch(new URL('/v1/run', sandboxUrl), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(ctx.idempotencyKey ? { 'idempotency-key': ctx.idempotencyKey } : {}),
        },
        body: JSON.stringify(input),
        signal: ctx.signal,
      });
      if (!res.ok) {
        const err = new FlotillaError('FLOTILLA_SANDBOX_ERROR', `sandbox answered ${res.status}`);
        Object.assign(err, { retryable: res.status >= 500 || res.status === 429 });
        throw err;
      }
      return RunResult.parse(await res.json());
    },
  });
}
