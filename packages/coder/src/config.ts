import { z } from 'zod';

/**
 * What the coder reads from the environment besides the worker settings. Defaults:
 *
 * | variable           | default | why |
 * |--------------------|---------|-----|
 * | SANDBOX_URL        | unset   | the sandbox service does not exist yet; code.run then fails as sandbox-unavailable |
 * | SANDBOX_TIMEOUT_MS | 30000   | per attempt: a short program's run plus the sandbox's own start-up |
 */
export const coderConfigSchema = z.object({
  /** Where the sandbox service answers POST /v1/run. */
  SANDBOX_URL: z.string().url().optional(),
  /** code.run's per-attempt timeout, ms. */
  SANDBOX_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
});
export type CoderConfig = z.output<typeof coderConfigSchema>;
