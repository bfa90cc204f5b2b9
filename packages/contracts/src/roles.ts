import { z } from 'zod';

/** A live role as the orchestrator sees it: what GET /v1/roles returns per role. */
export const RoleInfo = z.object({
  role: z.string(),
  description: z.string(),
  replicas: z.number().int().nonnegative(),
  versions: z.array(z.string()),
  inputSchema: z.record(z.string(), z.unknown()),
});
export type RoleInfo = z.infer<typeof RoleInfo>;
