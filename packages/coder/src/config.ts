import { type ConfigProblem, secret } from '@flotilla/runtime';
import { z } from 'zod';

/**
 * What the coder reads from the environment besides the worker settings. Defaults:
 *
 * | variable             | default | why |
 * |----------------------|---------|-----|
 * | SANDBOX_URL          | unset   | no sandbox: code.run fails as sandbox-unavailable |
 * | SANDBOX_TOKEN(_FILE) | unset   | the sandbox's own token; required with SANDBOX_URL (the sandbox is closed by default) |
 * | SANDBOX_TIMEOUT_MS   | 30000   | one run's round trip; the sandbox's own wall-time limit is 10 s |
 */
export const coderConfigSchema = z.object({
  /** Where the sandbox service answers POST /v1/run. */
  SANDBOX_URL: z.string().url().optional(),
  /** The bearer token the sandbox requires. Never logged. */
  SANDBOX_TOKEN: secret(z.string().min(16, 'must be at least 16 characters').optional()),
  /** code.run's per-attempt timeout, ms. */
  SANDBOX_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
});
export type CoderConfig = z.output<typeof coderConfigSchema>;

/** A sandbox URL without its token cannot work: say so at start, not at the first run. */
export const sandboxTokenCheck = (config: CoderConfig): ConfigProblem[] =>
  config.SANDBOX_URL && !config.SANDBOX_TOKEN
    ? [{ variable: 'SANDBOX_TOKEN', message: 'required with SANDBOX_URL (set SANDBOX_TOKEN or SANDBOX_TOKEN_FILE)' }]
    : [];
