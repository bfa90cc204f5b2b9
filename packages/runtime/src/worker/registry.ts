import { type RoleInfo, redisKeys } from '@flotilla/contracts';
import type { Redis } from 'ioredis';

/** How a replica announces itself; the orchestrator plans only for roles with live replicas. */
export interface RoleRegistration {
  role: string;
  description: string;
  /** JSON Schema of the role's input, which the planner must satisfy. */
  inputSchema: Record<string, unknown>;
  replica: string;
  version: string;
}

/** A replica is live while its heartbeat is younger than this. */
export const DEFAULT_STALE_AFTER_MS = 15_000;

export async function heartbeat(redis: Redis, prefix: string, reg: RoleRegistration, now = Date.now()): Promise<void> {
  const keys = redisKeys(prefix);
  const meta = JSON.stringify({ description: reg.description, inputSchema: reg.inputSchema });
  await redis
    .multi()
    .sadd(keys.roles, reg.role)
    .set(keys.roleMeta(reg.role), meta)
    .zadd(keys.roleReplicas(reg.role), now, reg.replica)
    .hset(keys.roleReplicaVersions(reg.role), reg.replica, reg.version)
    .exec();
}

/** Removes this replica at once on shutdown, rather than letting it age out. */
export async function deregister(redis: Redis, prefix: string, reg: Pick<RoleRegistration, 'role' | 'replica'>) {
  const keys = redisKeys(prefix);
  await redis
    .multi()
    .zrem(keys.roleReplicas(reg.role), reg.replica)
    .hdel(keys.roleReplicaVersions(reg.role), reg.replica)
    .exec();
}

/** Roles with at least one live replica, with counts, versions and input schemas. */
export async function listRoles(
  redis: Redis,
  prefix: string,
  { staleAfterMs = DEFAULT_STALE_AFTER_MS, now = Date.now() }: { staleAfterMs?: number; now?: number } = {},
): Promise<RoleInfo[]> {
  const keys = redisKeys(prefix);
  const roles = (await redis.smembers(keys.roles)).sort();
  const out: RoleInfo[] = [];
  for (const role of roles) {
    const live = await redis.zrangebyscore(keys.roleReplicas(role), now - staleAfterMs, '+inf');
    if (live.length === 0) continue;
    const [metaJson, versionsByReplica] = await Promise.all([
      redis.get(keys.roleMeta(role)),
      redis.hmget(keys.roleReplicaVersions(role), ...live),
    ]);
    const meta = metaJson
      ? (JSON.parse(metaJson) as { description?: string; inputSchema?: Record<string, unknown> })
      : {};
    out.push({
      role,
      description: meta.description ?? '',
      replicas: live.length,
      versions: [...new Set(versionsByReplica.filter((v): v is string => typeof v === 'string'))].sort(),
      inputSchema: meta.inputSchema ?? {},
    });
  }
  return out;
}
