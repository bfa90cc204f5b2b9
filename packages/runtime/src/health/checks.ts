import type { Redis } from 'ioredis';

/** A named readiness check: resolves when the dependency is usable, rejects (or times out) when not. */
export interface ReadinessCheck {
  name: string;
  /** Aborted when the check's time is up; checks that can cancel their work should. */
  check: (signal: AbortSignal) => Promise<unknown>;
  /** Overrides the server's per-check timeout. */
  timeoutMs?: number;
  /**
   * A dependency the service works on without (degraded), such as a worker's memory: its failure is
   * reported under `degraded` while /readyz stays 200, so Swarm, Compose or Kubernetes do not restart
   * or unroute every replica because Chroma went down. Default false: a failure makes /readyz 503.
   */
  optional?: boolean;
}

/**
 * Redis answers PING. A connection that is not `ready` fails at once with its state
 * ("reconnecting"), which says more than a timeout would.
 */
export function redisCheck(redis: Redis, { name = 'redis' }: { name?: string } = {}): ReadinessCheck {
  return {
    name,
    check: async () => {
      if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
      const reply = await redis.ping();
      if (reply !== 'PONG') throw new Error(`unexpected PING reply ${JSON.stringify(reply)}`);
    },
  };
}

/**
 * Chroma answers its heartbeat (GET /api/v2/heartbeat), with the token its gate requires when given one.
 * `optional` for services that degrade without memory rather than stop (see ReadinessCheck.optional).
 */
export function chromaCheck(
  url: string,
  { name = 'chroma', token, optional = false }: { name?: string; token?: string; optional?: boolean } = {},
): ReadinessCheck {
  const heartbeat = new URL('/api/v2/heartbeat', url);
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return {
    name,
    optional,
    check: async (signal) => {
      const res = await fetch(heartbeat, { signal, headers });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`chroma heartbeat answered HTTP ${res.status}`);
    },
  };
}

/**
 * A BullMQ worker is fetching jobs. A worker whose run loop ended (closed, or stopped on an
 * error) takes no work, so its replica must leave the load balancer's and the operator's view.
 */
export function workerRunningCheck(
  worker: { isRunning(): boolean },
  { name = 'worker' }: { name?: string } = {},
): ReadinessCheck {
  return {
    name,
    check: async () => {
      if (!worker.isRunning()) throw new Error('worker is not running');
    },
  };
}
