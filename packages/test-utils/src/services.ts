import { randomUUID } from 'node:crypto';

/** A queue prefix no other test file shares, as BullMQ's own tests do. */
export const uniquePrefix = (name = 'test') => `${name}-${randomUUID().slice(0, 8)}`;

/**
 * URLs of the run's shared Redis and Chroma, which test/global-setup.ts started (or reused)
 * and exported before any test file loaded.
 */
export function testServices(): { redisUrl: string; chromaUrl: string } {
  const redisUrl = process.env.REDIS_URL;
  const chromaUrl = process.env.CHROMA_URL;
  if (!redisUrl || !chromaUrl)
    throw new Error('REDIS_URL/CHROMA_URL unset: run tests through vitest (test/global-setup.ts)');
  return { redisUrl, chromaUrl };
}
