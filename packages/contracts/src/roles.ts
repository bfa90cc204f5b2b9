import { z } from 'zod';

/** A goal and the input a role should get for it: the planner's few-shot examples. */
export const PlanExample = z.object({ goal: z.string(), input: z.unknown() });
export type PlanExample = z.infer<typeof PlanExample>;

/**
 * A role the planner may use, as the orchestrator sees it: what GET /v1/roles returns per role. A
 * role with live replicas, or one that scales to zero (then `replicas` may be 0: its queued job is
 * what starts a replica).
 */
export const RoleInfo = z.object({
  role: z.string(),
  description: z.string(),
  /** Live replicas (heartbeat younger than ROLE_STALE_AFTER_MS); 0 only for a role that scales to zero. */
  replicas: z.number().int().nonnegative(),
  versions: z.array(z.string()),
  inputSchema: z.record(z.string(), z.unknown()),
  /** Examples the role publishes for the planner; absent when it publishes none. */
  examples: z.array(PlanExample).optional(),
  /**
   * The role declared it is started on demand (WORKER_SCALE_TO_ZERO): it is planned for with no
   * replica running. Absent from registries older than this field: read as false.
   */
  scalesToZero: z.boolean().optional(),
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
  /** The role is started on demand (WORKER_SCALE_TO_ZERO): no live replica is not an outage. */
  scalesToZero: z.boolean().optional(),
});
export type RoleReplicas = z.infer<typeof RoleReplicas>;
