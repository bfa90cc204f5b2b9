// Starts real redis-server processes: the local mesh and the tests depend on these helpers, and what
// they promise (a private server, kill and restart on the same port) only shows with the real binary.
import { describe, expect, it } from 'vitest';
import { redisReachable, startRedis } from './services.js';

describe('local services', () => {
  it('starts a private redis-server that survives kill and restart', async () => {
    const redis = await startRedis({ reuse: false });
    try {
      expect(redis.source).toBe('binary');
      await redis.kill?.();
      expect(await redisReachable(redis.url)).toBe(false);
      await redis.restart?.();
      expect(await redisReachable(redis.url)).toBe(true);
    } finally {
      await redis.stop();
    }
  });

  it('reuses a reachable REDIS_URL instead of starting one', async () => {
    // test/global-setup.ts exported the run's Redis; an unreachable URL must not be "reused".
    const reused = await startRedis();
    expect(reused).toMatchObject({ source: 'env', url: process.env.REDIS_URL });
    const previous = process.env.REDIS_URL;
    process.env.REDIS_URL = 'redis://127.0.0.1:1';
    const started = await startRedis();
    try {
      expect(started.source).toBe('binary');
    } finally {
      process.env.REDIS_URL = previous;
      await started.stop();
    }
  });
});
