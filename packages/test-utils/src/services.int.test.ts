// Proves the helper hands out real, reachable services; every other integration test relies on it.
import { describe, expect, inject, it } from 'vitest';
import { chromaReachable, redisReachable, startRedis } from './index.js';

describe('test services', () => {
  it('provides a reachable Redis and Chroma', async () => {
    expect(await redisReachable(inject('redisUrl'))).toBe(true);
    expect(await chromaReachable(inject('chromaUrl'))).toBe(true);
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
