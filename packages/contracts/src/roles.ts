import { z } from 'zod';

/** A live role as the orchestrator sees it: what GET /v1/roles returns per role. */
/** A goal and the input a role should get for it: the planner's few-shot examples. */
export const PlanExample = z.object({ goal: z.string(), input: z.unknown() });
export type PlanExample = z.infer<typeof PlanExample>;

export const RoleInfo = z.object({
  role: z.string(),
  description: z.string(),
  replicas: z.number().int().nonnegative(),
  versions: z.array(z.string()),
  inputSchema: z.record(z.string(), z.unknown()),
  /** Examples the role publishes for the planner; absent when it publishes none. */
  examples: z.array(PlanExample).optional(),
});
export type RoleInfo = z.infer<typeof RoleInfo>;

/** One replica of a role as the registry holds it: its last heartbeat and the image version it runs. */
export const ReplicaInfo = z.object({
  replica: z.string(),
  /** SERVICE_VERSION of the replica (its image tag); 'unknown' when it registered none. */
  version: z.string(),
  /** Last heartbeat, ISO 8601. */
  heartbeatAt: z.string(),
  heartbeatAgeMs: z.number().int().nonnegative(),
  /** Heartbeat younger than ROLE_STALE_AFTER_MS: the planner counts it. */
  live: z.boolean(),
});
export type ReplicaInfo = z.infer<typeof ReplicaInfo>;

/** Every role that ever registered, with all its registered replicas, live or stale (GET /v1/admin/replicas). */
export const RoleReplicas = z.object({
  role: z.string(),
  description: z.string(),
  replicas: z.array(ReplicaInfo),
});
export type RoleReplicas = z.infer<typeof RoleReplicas>;
