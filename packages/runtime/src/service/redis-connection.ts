import { Cluster, Redis } from 'ioredis';
import type { BaseConfig } from '../config/base.js';

/**
 * How a connection behaves when Redis is away. `blocking`: BullMQ's own worker/flow connections,
 * which must wait out a blip (maxRetriesPerRequest null, as BullMQ requires). `commands`: what the
 * service issues itself; fails fast so a request or a run gets an error instead of hanging.
 * `subscriber`: pub/sub, on a connection of its own (subscribe mode can't run commands).
 */
export type RedisRole = 'blocking' | 'commands' | 'subscriber';

type ConnectionConfig = Pick<BaseConfig, 'REDIS_URL' | 'REDIS_USERNAME' | 'REDIS_PASSWORD' | 'REDIS_CLUSTER_NODES'>;

/**
 * A connection to the deployment's Redis: one node (REDIS_URL), or a Redis Cluster
 * (REDIS_CLUSTER_NODES) through ioredis's `Cluster`, which follows the slot map and its changes.
 *
 * The cluster client is handed out under the `Redis` type on purpose: flotilla and BullMQ issue
 * only commands both clients have (BullMQ takes either as its connection), and the one call whose
 * signature differs, `duplicate`, goes through duplicateConnection. Typing every consumer as
 * `Redis | Cluster` would say the same at a hundred call sites.
 */
export function createRedisConnection(config: ConnectionConfig, role: RedisRole): Redis {
  const perNode = {
    maxRetriesPerRequest: role === 'blocking' ? null : 1,
    // Unset, ioredis takes them from the URL (or logs in as the default user on a dev Redis).
    ...(config.REDIS_USERNAME ? { username: config.REDIS_USERNAME } : {}),
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
  };
  if (!config.REDIS_CLUSTER_NODES) return new Redis(config.REDIS_URL, perNode);
  // BullMQ reads maxRetriesPerRequest from redisOptions on a cluster; credentials apply to every node.
  return new Cluster(config.REDIS_CLUSTER_NODES, { redisOptions: perNode }) as unknown as Redis;
}

/** Whether a connection from createRedisConnection is a cluster client. */
export const isCluster = (conn: Redis): boolean => (conn as unknown as { isCluster?: boolean }).isCluster === true;

/**
 * A new connection to the same Redis, for what holds a connection of its own (XREAD BLOCK,
 * SUBSCRIBE). `Redis.duplicate(options)` and `Cluster.duplicate(nodes, options)` differ: a cluster
 * client given Redis's arguments would silently drop them and connect at once.
 */
export function duplicateConnection(
  conn: Redis,
  overrides: { lazyConnect?: boolean; maxRetriesPerRequest?: number | null } = {},
): Redis {
  if (!isCluster(conn)) return conn.duplicate(overrides);
  const cluster = conn as unknown as Cluster;
  const { lazyConnect, ...perNode } = overrides;
  return cluster.duplicate([], {
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    redisOptions: { ...cluster.options.redisOptions, ...perNode },
  }) as unknown as Redis;
}
