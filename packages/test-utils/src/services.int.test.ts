// Proves the run's shared services are real and reachable; every other integration test relies on them.
import { describe, expect, it } from 'vitest';
import { chromaReachable, redisReachable, testServices } from './index.js';

describe('test services', () => {
  it('provides a reachable Redis and Chroma', async () => {
    const { redisUrl, chromaUrl } = testServices();
    expect(await redisReachable(redisUrl)).toBe(true);
    expect(await chromaReachable(chromaUrl)).toBe(true);
  });
});
