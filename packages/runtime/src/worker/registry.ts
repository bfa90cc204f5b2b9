import { type PlanExample, type RoleInfo, type RoleReplicas, redisKeys } from '@flotilla/contracts';
import type { ChainableCommander, Redis } from 'ioredis';

/**
 * How a replica announces itself. The orchestrator plans for roles with live replicas, and for roles
 * that declared they scale to zero (see `scaleToZero`) while none runs.
 */
export interface RoleRegistration {
  role: string;
  description: string;
  /** JSON Schema of the role's input, which the planner must satisfy. */
  inputSchema: Record<string, unknown>;
  /** Goals with the input the role should get for them, for the planner's prompt. */
  examples?: PlanExample[];
  replica: string;
  version: string;
  /**
   * The role is started on demand (KEDA at minReplicaCount 0, WORKER_SCALE_TO_ZERO): the planner
   * keeps planning for it with no replica running, since the job it queues is what starts one.
   * `forgetAfterMs` after the last heartbeat of its last replica the role is forgotten (its meta
   * expires), so a role removed for good stops being planned. Absent: planned only while live.
   */
  scaleToZero?: { forgetAfterMs: number };
}

/** What a role publishes for the planner, stored without expiry unless the role scales to zero. */
interface RoleMeta {
  description?: string;
  inputSchema?: Record<string, unknown>;
  examples?: PlanExample[];
  scaleToZero?: boolean;
}

const parseMeta = (json: string | null): RoleMeta => (json ? (JSON.parse(json) as RoleMeta) : {});

/** A replica is live while its heartbeat is younger than this. */
export const DEFAULT_STALE_AFTER_MS = 15_000;

export async function heartbeat(redis: Redis, prefix: string, reg: RoleRegistration, now = Date.now()): Promise<void> {
  const keys = redisKeys(prefix);
  const meta = JSON.stringify({
    description: reg.description,
    inputSchema: reg.inputSchema,
    examples: reg.examples,
    ...(reg.scaleToZero ? { scaleToZero: true } : {}),
  } satisfies RoleMeta);
  const tx = redis.multi().sadd(keys.roles, reg.role);
  // Each beat pushes the expiry out again, so it runs from the last beat of the last replica. A SET
  // without PX clears an expiry: a role that stops scaling to zero is kept for good again.
  if (reg.scaleToZero) tx.set(keys.roleMeta(reg.role), meta, 'PX', reg.scaleToZero.forgetAfterMs);
  else tx.set(keys.roleMeta(reg.role), meta);
  await tx
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

/**
 * The roles the planner may use: those with at least one live replica, and those that scale to zero
 * (listed with 0 replicas until they are forgotten), with counts, versions and input schemas.
 */
export async function listRoles(
  redis: Redis,
  prefix: string,
  { staleAfterMs = DEFAULT_STALE_AFTER_MS, now = Date.now() }: { staleAfterMs?: number; now?: number } = {},
): Promise<RoleInfo[]> {
  const keys = redisKeys(prefix);
  const roles = (await redis.smembers(keys.roles)).sort();
  // Two pipelined rounds whatever the number of roles: the planner asks on every task.
  const firstRound = await inPipeline(redis, roles, (p, role) =>
    p.zrangebyscore(keys.roleReplicas(role), now - staleAfterMs, '+inf').get(keys.roleMeta(role)),
  );
  const listed = roles.flatMap((role, i) => {
    const live = firstRound[2 * i] as string[];
    const meta = parseMeta(firstRound[2 * i + 1] as string | null);
    return live.length || meta.scaleToZero ? [{ role, live, meta }] : [];
  });
  const withLive = listed.filter((r) => r.live.length > 0);
  const versionReplies = await inPipeline(redis, withLive, (p, { role, live }) =>
    p.hmget(keys.roleReplicaVersions(role), ...live),
  );
  const versionsOf = new Map(withLive.map((r, i) => [r.role, versionReplies[i] as (string | null)[]]));
  return listed.map(({ role, live, meta }) => ({
    role,
    description: meta.description ?? '',
    replicas: live.length,
    versions: [...new Set((versionsOf.get(role) ?? []).filter((v): v is string => typeof v === 'string'))].sort(),
    inputSchema: meta.inputSchema ?? {},
    ...(meta.examples?.length ? { examples: meta.examples } : {}),
    scalesToZero: meta.scaleToZero === true,
  }));
}

/**
 * Every role that ever registered with every replica still in its registry, live or not, with
 * heartbeat age and version: the operator's view (a replica that stopped beating is what they are
 * looking for), where listRoles is the planner's (live ones, and those that scale to zero).
 */
export async function listReplicas(
  redis: Redis,
  prefix: string,
  { staleAfterMs = DEFAULT_STALE_AFTER_MS, now = Date.now() }: { staleAfterMs?: number; now?: number } = {},
): Promise<RoleReplicas[]> {
  const keys = redisKeys(prefix);
  const roles = (await redis.smembers(keys.roles)).sort();
  const replies = await inPipeline(redis, roles, (p, role) =>
    p
      .get(keys.roleMeta(role))
      .zrange(keys.roleReplicas(role), 0, -1, 'WITHSCORES')
      .hgetall(keys.roleReplicaVersions(role)),
  );
  return roles.map((role, i) => {
    const metaJson = replies[3 * i] as string | null;
    const beats = replies[3 * i + 1] as string[];
    const versions = replies[3 * i + 2] as Record<string, string>;
    const meta = parseMeta(metaJson);
    const replicas: RoleReplicas['replicas'] = [];
    for (let j = 0; j < beats.length; j += 2) {
      const replica = beats[j] as string;
      const at = Number(beats[j + 1]);
      const age = Math.max(0, Math.round(now - at));
      replicas.push({
        replica,
        version: versions[replica] ?? 'unknown',
        heartbeatAt: new Date(at).toISOString(),
        heartbeatAgeMs: age,
        live: age <= staleAfterMs,
      });
    }
    return { role, description: meta.description ?? '', replicas, scalesToZero: meta.scaleToZero === true };
  });
}

/** The replies of the commands `add` queues for each item, in one pipeline; throws the first command error. */
async function inPipeline<T>(
  redis: Redis,
  items: readonly T[],
  add: (pipeline: ChainableCommander, item: T) => unknown,
): Promise<unknown[]> {
  if (items.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const item of items) add(pipeline, item);
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}
