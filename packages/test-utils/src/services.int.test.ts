// Proves the helper hands out real, reachable services; every other integration test relies on it.
import { describe, expect, it } from 'vitest';
import { chromaReachable, redisReachable, startRedis, testServices } from './index.js';

describe('test services', () => {
  it('provides a reachable Redis and Chroma', async () => {
    const { redisUrl, chromaUrl } = testServices();
    expect(await redisReachable(redisUrl)).toBe(true);
    expect(await chromaReachable(chromaUrl)).toBe(true);
  });

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
});
